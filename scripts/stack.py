"""Start, wait for and stop the services: backend, action server, Rasa server, scheduler.

Used by `make run` / `make stop` and by the end-to-end tests (with their own ports and databases),
so the services are launched exactly one way. Standard library only.

    python -m scripts.stack up      # start everything in the background, print the URLs
    python -m scripts.stack down    # stop what `up` started
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bot.settings import derive, merged_env, preflight, profile

ROOT = Path(__file__).resolve().parents[1]

APP_PY = str(ROOT / ".venv-app" / "bin" / "python")
BOT_PY = str(ROOT / ".venv-bot" / "bin" / "python")


@dataclass
class Service:
    name: str
    argv: list[str]
    health_url: str | None
    startup_timeout: float = 60.0
    # Settings of this process only, over the stack's (a replica's own port: scripts/scaled.py).
    env: dict[str, str] = field(default_factory=dict)


# The processes, each started one way whatever the shape (scripts/stack.py, scripts/scaled.py).
def backend_service(env: dict[str, str], workers: int = 1, name: str = "backend") -> Service:
    """The backend on 127.0.0.1:BACKEND_PORT; several uvicorn workers share the port (a stateless
    API: the database holds everything, the outbox worker of each claims with SKIP LOCKED)."""
    b = env["BACKEND_PORT"]
    argv = [APP_PY, "-m", "uvicorn", "--factory", "backend.main:create_app", "--host", "127.0.0.1", "--port", b,
            "--no-access-log"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return Service(name, argv, f"http://127.0.0.1:{b}/health")


def actions_service(env: dict[str, str], port: str | None = None, name: str = "actions") -> Service:
    """An action server on ACTION_HOST:port (ACTION_PORT unless a replica's own port is given)."""
    port = port or env["ACTION_PORT"]
    return Service(name, [BOT_PY, "-m", "bot.launch", "actions"], f"http://{env['ACTION_HOST']}:{port}/health",
                   env={"ACTION_PORT": port} if port != env["ACTION_PORT"] else {})


def rasa_service(env: dict[str, str], port: str | None = None, name: str = "rasa") -> Service:
    """A Rasa server on 127.0.0.1:port (RASA_PORT unless a replica's own port is given)."""
    port = port or env["RASA_PORT"]
    return Service(name, [BOT_PY, "-m", "bot.launch", "rasa"], f"http://127.0.0.1:{port}/", startup_timeout=180,
                   env={"RASA_PORT": port} if port != env["RASA_PORT"] else {})


def scheduler_service(name: str = "scheduler") -> Service:
    return Service(name, [APP_PY, "-m", "scheduler"], None)


@dataclass
class Stack:
    """A set of services sharing one environment; run_dir holds pid files and logs."""

    env: dict[str, str]
    run_dir: Path
    services: list[Service] = field(default_factory=list)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def from_env(cls, run_dir: Path, overrides: dict[str, str] | None = None, with_scheduler: bool = True) -> "Stack":
        overrides = overrides or {}
        env = merged_env()
        env.update(overrides)
        # Derived values follow the ports, whatever was overridden: Rasa's URL too (derive), unless
        # the overrides give one.
        env["RASA_URL"] = overrides.get("RASA_URL", "")
        env = derive(env)
        env.setdefault("BACKEND_URL", f"http://127.0.0.1:{env['BACKEND_PORT']}")
        # The action server listens on ACTION_HOST only (127.0.0.1 unless a private address is set).
        env["ACTION_HOST"] = env.get("ACTION_HOST") or "127.0.0.1"
        env["ACTION_SERVER_URL"] = f"http://{env['ACTION_HOST']}:{env['ACTION_PORT']}/webhook"
        stack = cls(env=env, run_dir=run_dir)
        stack.services = [backend_service(env), actions_service(env), rasa_service(env)]
        if with_scheduler:
            stack.services.append(scheduler_service())
        return stack

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return env

    def start(self, prepare: Callable[[], None] | None = None) -> None:
        """The servers start together; the scheduler only once they answer, so that its first
        dispatch does not meet a Rasa still loading its model (it would back off a minute).
        ``prepare`` (migrations, demo data) runs while the bot side imports (half a minute; it waits
        for the backend's rules only then, bot/rules.py), before the backend starts.
        APP_ENV=production: nothing starts while a secret is published or missing (SystemExit)."""
        preflight(self.env, "stack")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = self._child_env()
        servers = [svc for svc in self.services if svc.health_url]
        early = [svc for svc in servers if svc.argv[:3] == [BOT_PY, "-m", "bot.launch"]] if prepare else []
        for svc in early:
            self._spawn(svc, env)
        if prepare is not None:
            prepare()
        for svc in servers:
            if svc not in early:
                self._spawn(svc, env)
        for svc in servers:
            self.wait_healthy(svc)
        for svc in self.services:
            if not svc.health_url:
                self._spawn(svc, env)

    def _spawn(self, svc: Service, env: dict[str, str]) -> None:
        log = open(self.run_dir / f"{svc.name}.log", "ab")
        proc = subprocess.Popen(svc.argv, cwd=ROOT, env={**env, **svc.env}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[svc.name] = proc
        (self.run_dir / f"{svc.name}.pid").write_text(str(proc.pid))

    def wait_healthy(self, svc: Service) -> None:
        deadline = time.monotonic() + svc.startup_timeout
        proc = self.procs.get(svc.name)
        while svc.health_url:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{svc.name} exited with {proc.returncode}; see {self.run_dir / (svc.name + '.log')}")
            try:
                with urllib.request.urlopen(svc.health_url, timeout=2) as resp:
                    if resp.status < 500:
                        print(f"  {svc.name:<9} up", flush=True)
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{svc.name} not healthy after {svc.startup_timeout:.0f}s; see {self.run_dir / (svc.name + '.log')}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop our own children: wait on them (a zombie would look alive to killpg(pid, 0))."""
        for name, proc in self.procs.items():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)


def stop_pidfiles(run_dir: Path) -> None:
    for pidfile in sorted(run_dir.glob("*.pid")):
        try:
            pid = int(pidfile.read_text())
            os.killpg(pid, signal.SIGTERM)
            for _ in range(50):
                os.killpg(pid, 0)
                time.sleep(0.1)
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, ValueError, PermissionError):
            pass
        pidfile.unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    run_dir = ROOT / "var" / "run"
    if argv[:1] == ["up"]:
        stop_pidfiles(run_dir)
        stack = Stack.from_env(run_dir)
        print("starting services (logs in var/run/*.log)...", flush=True)
        stack.start()
        e = stack.env
        if profile(e) == "production":
            print(f"""
The assistant is running (APP_ENV=production: no REST channel, action server token, CORS {e.get('CORS_ORIGINS')}):
  Web chat                                 http://127.0.0.1:{e['BACKEND_PORT']}/chat
  Staff console                            http://127.0.0.1:{e['BACKEND_PORT']}/console
  Rasa server (channels, HTTP API)         http://127.0.0.1:{e['RASA_PORT']}
  Action server (Rasa only, token)         http://{e['ACTION_HOST']}:{e['ACTION_PORT']}
Stop with: make stop""")
            return
        print(f"""
The assistant is running:
  Web chat (sign in with a demo phone; the SMS code lands in var/sms_outbox.jsonl)
                                           http://127.0.0.1:{e['BACKEND_PORT']}/chat
  Staff console (agent1 / agent2 / supervisor1, password CONSOLE_DEMO_PASSWORD in .env.example)
                                           http://127.0.0.1:{e['BACKEND_PORT']}/console
  Rasa server (REST, socket.io, HTTP API)  http://127.0.0.1:{e['RASA_PORT']}
    try (a signed-in web session of customer 1, then a question): see the README's Quick start
  Action server                            http://127.0.0.1:{e['ACTION_PORT']}
  Backend API (OpenAPI docs)               http://127.0.0.1:{e['BACKEND_PORT']}/docs
  Scheduler                                background process (var/run/scheduler.log)
Stop with: make stop""")
    elif argv[:1] == ["down"]:
        stop_pidfiles(run_dir)
        print("services stopped")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
