# One-command set-up: every target creates what it needs on first use.
#   make run    set up, then start backend, action server, Rasa and scheduler; print the URLs
#   make test   set up, then run the whole test suite
#   make stop   stop what `make run` started
SHELL := /bin/bash
.DEFAULT_GOAL := run
APP_PY := .venv-app/bin/python
BOT_PY := .venv-bot/bin/python
PYTEST_ARGS ?=

.PHONY: run stop test setup envs db model validate eval clean browser bench-outreach

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
	@$(APP_PY) scripts/stack.py up

stop:
	@python3 scripts/stack.py down

validate: .venv-bot/.installed
	@$(BOT_PY) -m rasa data validate

# Both suites must collect tests: pytest's exit code 5 (nothing collected) counts as a failure.
browser:
	@scripts/setup_envs.sh browser

test: envs model browser
	@echo "==> bot-side unit tests (Python 3.10: NLU components, entity normalisation)"
	@$(BOT_PY) -m pytest tests/bot -q -p no:cacheprovider; rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "no bot-side tests collected: failing" >&2; exit 1; fi; [ $$rc -eq 0 ] || exit $$rc
	@echo "==> app-side tests (backend, conversation stories, end to end)"
	@$(APP_PY) -m pytest --ignore=tests/bot --timeout 900 $(PYTEST_ARGS); rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# Outreach benchmark (not part of `make test`; CPU heavy, about 11 minutes on 2 cores): a generated
# book of BENCH_LOANS loans in a fresh SQLite file (BENCH_ARGS="--url postgresql+psycopg://..." for an
# empty PostgreSQL database), the day's notices planned (timed), BENCH_DELIVER of them delivered by the
# real dispatcher through the real Rasa and action server to fake WeChat/Twilio servers (notices/s,
# checked against the outreach log), peak memory per process; reports/outreach-bench.{json,md}.
# The scheduler runs one dispatcher; BENCH_ARGS="--dispatchers 2" measures two concurrent ones.
BENCH_LOANS ?= 100000
BENCH_DELIVER ?= 2000
BENCH_ARGS ?=
bench-outreach: envs model
	@$(APP_PY) -m scheduler.bench_delivery --loans $(BENCH_LOANS) --deliver $(BENCH_DELIVER) $(BENCH_ARGS)

# NLU benchmark: 5-fold cross-validation, reports and confusion matrix in reports/nlu.
eval: .venv-bot/.installed
	@$(BOT_PY) -m bot.launch eval

clean: stop
	rm -rf var models .pytest_cache
