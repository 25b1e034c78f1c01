#!/usr/bin/env bash
# Creates the two virtual environments from the lock files (idempotent).
#   scripts/setup_envs.sh app   -> .venv-app  (machine Python >= 3.11: backend, scheduler, tests)
#   scripts/setup_envs.sh bot   -> .venv-bot  (Python 3.10: Rasa, action server, channels)
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9

find_python310() {
  local candidates=()
  command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.[0-9]+)?$' | sort -V -r); do
      candidates+=("$(pyenv prefix "$v")/bin/python3.10")
    done
  fi
  for p in "${candidates[@]}"; do
    if "$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
      echo "$p"; return 0
    fi
  done
  return 1
}

ensure_app() {
  if [ ! -x .venv-app/bin/python ]; then
    local py=python3
    if ! "$py" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
      echo "Python 3.11 or newer is required for the backend: install it (e.g. 'pyenv install 3.11') and re-run make." >&2
      exit 1
    fi
    echo "==> creating .venv-app with $($py --version)"
    "$py" -m venv .venv-app
    .venv-app/bin/pip install -q "uv==$UV_VERSION"
  fi
  echo "==> installing the app environment from requirements/app.lock"
  .venv-app/bin/uv pip sync --python .venv-app/bin/python requirements/app.lock
  touch .venv-app/.installed
}

ensure_bot() {
  [ -x .venv-app/bin/uv ] || ensure_app
  if [ ! -x .venv-bot/bin/python ]; then
    local py
    if ! py=$(find_python310); then
      echo "Python 3.10 is required for Rasa 3.6 and was not found: install it with 'pyenv install 3.10.13' (or your system's python3.10 package) and re-run make." >&2
      exit 1
    fi
    echo "==> creating .venv-bot with $py"
    .venv-app/bin/uv venv -q --python "$py" .venv-bot
  fi
  echo "==> installing the bot environment from requirements/bot.lock (Rasa, TensorFlow: large, first time only)"
  .venv-app/bin/uv pip sync --python .venv-bot/bin/python requirements/bot.lock
  touch .venv-bot/.installed
}

ensure_browser() {
  # Browser tests drive Debian's chromium (never a downloaded browser); CJK fonts so Chinese renders.
  if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    return 0
  fi
  echo "==> installing Debian's chromium and fonts-noto-cjk for the browser tests"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
}

ensure_nginx() {
  # The scaled shape (`make run-scaled`, tests/e2e/test_replicas.py) puts Rasa and the action servers
  # behind Debian's nginx, run as a child process with a generated configuration (scripts/scaled.py):
  # the package's own service is neither needed nor started.
  if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    return 0
  fi
  echo "==> installing Debian's nginx for the scaled shape and its tests"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx >/dev/null
}

case "${1:-}" in
  app) ensure_app ;;
  bot) ensure_bot ;;
  # The test machine's system packages (`make test`): chromium for the browser tests, nginx for the
  # replica tests.
  browser) ensure_browser; ensure_nginx ;;
  scaled) ensure_nginx ;;
  *) echo "usage: $0 app|bot|browser|scaled" >&2; exit 2 ;;
esac
