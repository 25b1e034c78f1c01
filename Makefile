# One-command set-up: every target creates what it needs on first use.
#   make run    set up, then start backend, action server, Rasa and scheduler; print the URLs
#   make test   set up, then run the whole test suite
#   make stop   stop what `make run` started
SHELL := /bin/bash
.DEFAULT_GOAL := run
APP_PY := .venv-app/bin/python
BOT_PY := .venv-bot/bin/python
PYTEST_ARGS ?=

.PHONY: run stop test lint setup envs db model validate eval clean browser bench-outreach run-production-check

.venv-app/.installed: requirements/app.lock scripts/setup_envs.sh
	@scripts/setup_envs.sh app

.venv-bot/.installed: requirements/bot.lock scripts/setup_envs.sh .venv-app/.installed
	@scripts/setup_envs.sh bot

envs: .venv-app/.installed .venv-bot/.installed

db: .venv-app/.installed
	@echo "==> database: migrate and load demo data (first run only)"
	@$(APP_PY) -m backend.cli setup

model: .venv-bot/.installed
	@echo "==> Rasa model (trained only when config, domain or data changed)"
	@$(BOT_PY) -m bot.launch train

setup: envs db model

run: setup
	@$(APP_PY) -m scripts.stack up

stop:
	@python3 -m scripts.stack down

# The production shape on this machine (scripts/scaled.py, docs/scaling.md): PostgreSQL (backend,
# conversations, scheduler jobs) and Redis (conversation locks, rate limits, WeChat token) on
# 127.0.0.1, two Rasa replicas and two action servers behind Debian's nginx (installed on first
# use), the backend with two uvicorn workers, two schedulers sharing the lease (SCALED_ARGS, e.g.
# "--rasa 3 --backend-workers 4": python -m scripts.scaled --help). Only URLs
# differ from `make run`. `make stop` stops it (same pid files); `python -m scripts.scaled status`
# lists every process with its memory.
.PHONY: run-scaled
SCALED_ARGS ?=
run-scaled: envs model
	@scripts/setup_envs.sh scaled
	@$(APP_PY) -m scripts.scaled up $(SCALED_ARGS)

# The production profile (APP_ENV=production), proved against the real processes: a stack on free
# ports with generated secrets; REST channel 404, action server on 127.0.0.1 only and 401 without
# its token, CORS only for CORS_ORIGINS, security headers, Secure console cookies, and no process
# starting with a published or missing secret. The same tests run in `make test`.
run-production-check: envs model
	@echo "==> production profile (tests/e2e/test_production_profile.py, tests/backend/test_security_headers.py)"
	@$(APP_PY) -m pytest tests/e2e/test_production_profile.py tests/backend/test_security_headers.py -v \
	 -p no:cacheprovider --timeout 600

validate: .venv-bot/.installed
	@$(BOT_PY) -m rasa data validate

# Both suites must collect tests: pytest's exit code 5 (nothing collected) counts as a failure.
browser:
	@scripts/setup_envs.sh browser

# Lint (pyproject.toml [tool.ruff]: the rule set and why); the first step of `make test`.
lint: .venv-app/.installed
	@echo "==> ruff check"
	@.venv-app/bin/ruff check .

test: envs model browser lint
	@echo "==> bot-side unit tests (Python 3.10: NLU components, entity normalisation)"
	@$(BOT_PY) -m pytest tests/bot -q -p no:cacheprovider; rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "no bot-side tests collected: failing" >&2; exit 1; fi; [ $$rc -eq 0 ] || exit $$rc
	@echo "==> app-side tests (backend, conversation stories, end to end)"
	@$(APP_PY) -m pytest --ignore=tests/bot --timeout 900 $(PYTEST_ARGS); rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# Outreach benchmark (not part of `make test`; CPU heavy, several minutes on 2 cores): a generated
# book of BENCH_LOANS loans in a fresh SQLite file (BENCH_ARGS="--url postgresql+psycopg://..." for an
# empty PostgreSQL database), the day's notices planned (timed), then one row per dispatcher count in
# BENCH_DISPATCHERS (threads, as the scheduler runs OUTREACH_DISPATCHERS of them), each dispatcher with
# BENCH_CONCURRENCY deliveries in flight (a list gives a row per value; 1 is the one-by-one dispatcher):
# BENCH_DELIVER notices per row delivered through the real Rasa and action server to fake
# WeChat/Twilio servers (notices/s, delivery p50/p95, each Rasa call's p50, CPU ms per notice per
# process; checked against the outreach log), peak memory per process; reports/outreach-bench.{json,md}.
BENCH_LOANS ?= 100000
BENCH_DELIVER ?= 2000
BENCH_DISPATCHERS ?= 1,2
BENCH_CONCURRENCY ?= 8
BENCH_ARGS ?=
bench-outreach: envs model
	@$(APP_PY) -m bench.delivery --loans $(BENCH_LOANS) --deliver $(BENCH_DELIVER) \
	 --dispatchers $(BENCH_DISPATCHERS) --concurrency $(BENCH_CONCURRENCY) $(BENCH_ARGS)

# Turn benchmark (not part of `make test`; about 10 minutes): the stack as the end-to-end tests run it
# (SQLite, 320 demo customers) driven open loop over the REST channel by conversations of demo
# borrowers at BENCH_RATES turns/s, BENCH_DURATION seconds a level, then the bare /model/parse at the
# same rates; reports/bench.{json,md,png}. BENCH_TURN_ARGS="--profile 20" also samples Rasa, the
# action server and the backend with py-spy during the 20 turns/s level (reports/profile-*.svg, .txt;
# py-spy needs root or kernel.yama.ptrace_scope=0); "--baseline" runs Rasa without bot/launch.py's
# hot-path fixes; "--model PATH" another model (e.g. one trained without TED into /tmp).
.PHONY: bench
BENCH_RATES ?= 10 20 50 100
BENCH_DURATION ?= 40
BENCH_TURN_ARGS ?=
bench: envs model
	@$(APP_PY) -m bench.turns --rates "$(BENCH_RATES)" --duration $(BENCH_DURATION) $(BENCH_TURN_ARGS)

# NLU benchmark: 5-fold cross-validation, reports and confusion matrix in reports/nlu.
eval: .venv-bot/.installed
	@$(BOT_PY) -m bot.launch eval

clean: stop
	rm -rf var models .pytest_cache

# Dependency audit (not part of `make test`: it needs PyPI's vulnerability service, which a machine
# that reaches only a package mirror does not have). Both locks are audited as pinned (--no-deps
# --disable-pip: the bot lock is for Python 3.10, the auditing environment is 3.11); --strict fails
# on any package that could not be looked up, so an unreachable service never passes as "no known
# vulnerabilities". Triage: README "Dependency audit". AUDIT_ARGS="-s osv" uses OSV instead.
.PHONY: audit
AUDIT_ARGS ?=
# What pip-audit asks PyPI: one release's JSON with its "vulnerabilities" (a mirror may serve neither).
AUDIT_PROBE_URL ?= https://pypi.org/pypi/pip/24.0/json
audit: .venv-app/.installed
	@echo "==> pip-audit: requirements/app.lock, requirements/bot.lock"
	@[ -z "$(AUDIT_PROBE_URL)" ] || $(APP_PY) -c "import json, urllib.request; \
	  assert 'vulnerabilities' in json.load(urllib.request.urlopen('$(AUDIT_PROBE_URL)', timeout=20))" 2>/dev/null || { \
	 echo "audit: the vulnerability service is unreachable from this machine ($(AUDIT_PROBE_URL)): nothing was audited" >&2; \
	 echo "audit: run it where pypi.org is reachable (or api.osv.dev: AUDIT_ARGS=\"-s osv\" AUDIT_PROBE_URL=)" >&2; \
	 exit 2; }
	@rc=0; for lock in requirements/app.lock requirements/bot.lock; do \
	  echo "--- $$lock"; \
	  .venv-app/bin/pip-audit -r $$lock --no-deps --disable-pip --strict --progress-spinner off $(AUDIT_ARGS) || rc=1; \
	done; exit $$rc
