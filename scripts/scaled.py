"""The production shape on one machine (`make run-scaled`): PostgreSQL, Redis, Rasa and action-server
replicas behind nginx, the backend with several workers, the scheduler with its lease.

    python -m scripts.scaled up [--rasa 2] [--actions 2] [--backend-workers 2] [--schedulers 2]
                                [--dispatchers N] [--database-url URL] [--tracker-url URL] [--redis-url URL]
    python -m scripts.scaled status   # every process of the running stack with its resident memory
    python -m scripts.scaled down     # stop it (as `make stop` does for var/run)
    python -m scripts.scaled render   # deploy/nginx/compose.conf, deploy/k8s/nginx.conf from nginx_config
    python -m scripts.stack down      # `make stop`: stops this shape like the embedded one

Processes (logs and pid files in var/run, nginx's generated configuration and logs in var/nginx):

    borrower ─► nginx :RASA_PORT ─┬─ any replica (least busy) ─► rasa-1 .. rasa-N   (webhooks: REST,
                                  │                                                 WeChat, SMS; /model/parse)
                                  └─ by conversation ─────────► the same replica   (socket.io, and Rasa's
                                                                                    HTTP API on a conversation)
    rasa-i ─► nginx :ACTION_PORT ─► actions-1 .. actions-N (stateless)
    backend (uvicorn, several workers) ◄─ actions, channels;  backend, scheduler ─► nginx :RASA_PORT

Only URLs differ from the embedded stack (`make run`): DATABASE_URL and RASA_TRACKER_URL point at
PostgreSQL, RASA_ENDPOINTS=endpoints.scale.yml puts Rasa's lock store on Redis, REDIS_URL and
WECHAT_REDIS_URL share the channel guard's rate counters and WeChat's token, nonces and send counts
between replicas, and RASA_URL, ACTION_SERVER_URL, RASA_PUBLIC_URL and SMS_PUBLIC_URL name nginx
rather than one process. Why each piece may or may not be replicated: docs/scaling.md.

Standard library only (psycopg from the app environment to create the databases); nginx is Debian's
package (scripts/setup_envs.sh scaled), run as a child process with the configuration written here.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from scripts.stack import (
    APP_PY, ROOT, Service, Stack, actions_service, backend_service, rasa_service, scheduler_service, stop_pidfiles,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/loan_assistant"
DEFAULT_TRACKER_URL = "postgresql://postgres@127.0.0.1:5432/rasa_tracker"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/1"
# Rasa's conversation lock (a ticket in Redis) outlives a replica killed while holding it: the next
# message of that conversation waits until the ticket expires. Rasa's default is 60 s; a turn takes
# well under a second, seconds under peak load, so 20 s bounds the wait after a crash and still
# leaves a slow turn its lock. Rasa reads it from the process environment only.
TICKET_LOCK_LIFETIME = "20"


@dataclass(frozen=True)
class Shape:
    rasa: int = 2
    actions: int = 2
    backend_workers: int = 2
    schedulers: int = 2  # one holds the lease and works, the others stand by and take over


def nginx_executable() -> str | None:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if Path(p).exists()), None)


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2).close()
        return True
    except OSError:
        return False


# The headers of every proxied request (a location that sets one header loses all inherited ones).
_HEADERS = """            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;"""


def nginx_config(directory: str | Path, rasa_listen: str, actions_listen: str | None, rasa: list[str],
                 actions: list[str], as_root: bool, resolver: str | None = None, logs_to_stdout: bool = False) -> str:
    """nginx's configuration: Rasa (and the action servers, when ``actions_listen`` is given) behind
    one front each. ``resolver``: a DNS server (containers): upstream names are resolved again while
    nginx runs (a replica restarted with a new address), not only at start. ``logs_to_stdout``: the
    container's log. The same text for `make run-scaled` and deploy/ (a test keeps them in step)."""
    suffix = " resolve" if resolver else ""

    def servers(addresses: list[str]) -> str:
        # One failed connection takes a server out for 10 s, then nginx tries it again.
        return "\n".join(f"        server {a} max_fails=1 fail_timeout=10s{suffix};" for a in addresses)

    def zone(name: str) -> str:
        return f"        zone {name} 64k;\n" if resolver else ""

    tries = max(len(rasa), len(actions), 2)
    # Root starts the master only; workers drop to nobody. Nothing is buffered to disk (no temp file
    # a worker could fail to write): bodies are at most 1 MB, responses are passed through.
    user = "user nobody nogroup;\n" if as_root else ""
    error_log = "stderr" if logs_to_stdout else f"{directory}/error.log"
    access_log = "/dev/stdout" if logs_to_stdout else f"{directory}/access.log"
    dns = f"    resolver {resolver} valid=10s ipv6=off;\n" if resolver else ""
    actions_upstream = f"""    # Action servers are stateless: any of them.
    upstream actions {{
        least_conn;
{zone("actions")}{servers(actions)}
        keepalive 32;
    }}
""" if actions_listen else ""
    actions_server = f"""
    server {{
        listen {actions_listen};
        location = /nginx-health {{ access_log off; return 200 "ok\\n"; }}
        location / {{
            proxy_pass http://actions;
{_HEADERS}
            proxy_set_header Connection "";
            proxy_read_timeout 120s;
        }}
    }}
""" if actions_listen else ""
    return f"""# Generated by scripts/scaled.py (nginx_config): edit that function, not this file.
{user}worker_processes 1;
pid {directory}/nginx.pid;
error_log {error_log} warn;
events {{ worker_connections 4096; }}

http {{
    server_tokens off;
{dns}    client_body_temp_path {directory}/tmp/body;
    proxy_temp_path {directory}/tmp/proxy;
    fastcgi_temp_path {directory}/tmp/fastcgi;
    uwsgi_temp_path {directory}/tmp/uwsgi;
    scgi_temp_path {directory}/tmp/scgi;
    client_max_body_size 1m;
    client_body_buffer_size 1m;
    proxy_max_temp_file_size 0;
    # Which replica served what (tests/e2e/test_replicas.py reads it): no message text, no query.
    log_format replicas '$msec $request_method $uri key=$conversation_key upstream=$upstream_addr '
                        'status=$status upstream_status=$upstream_status time=$request_time';
    access_log {access_log} replicas;

    # The conversation a request belongs to, where it names one: the web chat's socket.io connection
    # (?conversation=<id>, backend/static/chat.js) and Rasa's HTTP API on a conversation
    # (/conversations/<sender id>/..., the backend's staff replies and notices). Both hash to the same
    # replica, so what the backend sends to a web conversation reaches the socket that replica holds.
    # Without an id (an old page, a first anonymous visit) the client address decides.
    map $request_uri $conversation_key {{
        "~^/conversations/(?:web(?::|%3[Aa]))?(?<conv>[^/?]+)" $conv;
        "~^/socket\\.io/[^?]*\\?(?:.*&)?conversation=(?:web(?::|%3[Aa]))?(?<conv>[A-Za-z0-9_-]+)" $conv;
        default $remote_addr;
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        "" "";
    }}

    # Webhooks (REST, WeChat, SMS) and the model API: any replica, the least busy. The tracker store
    # (PostgreSQL) and the conversation lock (Redis) are shared, so a conversation may move.
    upstream rasa_any {{
        least_conn;
{zone("rasa_any")}{servers(rasa)}
        keepalive 32;
    }}
    upstream rasa_by_conversation {{
        hash $conversation_key consistent;
{zone("rasa_by_conversation")}{servers(rasa)}
        keepalive 32;
    }}
{actions_upstream}
    proxy_http_version 1.1;
    proxy_connect_timeout 2s;
    # A replica that refuses the connection (down, restarting) is skipped: the request had not
    # reached it. A request that did reach a replica is never sent to another (nginx resends no POST
    # once sent, and `non_idempotent` is deliberately absent): that replica may have processed it, so
    # the client gets a 502 and the channel's own retry (WeChat, Twilio, the web chat's resend), with
    # its message id, is what the replicas de-duplicate.
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries {tries};
    proxy_next_upstream_timeout 10s;

    server {{
        listen {rasa_listen};
        location = /nginx-health {{ access_log off; return 200 "ok\\n"; }}
        location /socket.io/ {{
            proxy_pass http://rasa_by_conversation;
{_HEADERS}
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
        location /conversations/ {{
            proxy_pass http://rasa_by_conversation;
{_HEADERS}
            proxy_set_header Connection "";
            proxy_read_timeout 120s;
        }}
        location / {{
            proxy_pass http://rasa_any;
{_HEADERS}
            proxy_set_header Connection "";
            proxy_read_timeout 120s;
        }}
    }}
{actions_server}}}
"""


# The committed nginx configurations of deploy/ (tests/backend/test_deploy_manifests.py checks them
# against nginx_config): Docker Compose (fixed replica names, Docker's DNS) and Kubernetes (Rasa as a
# StatefulSet behind a headless Service; the action servers behind their own Service, no nginx).
DEPLOY_NGINX = {
    "compose": dict(directory="/tmp/nginx", rasa_listen="5005", actions_listen="5055",
                    rasa=["rasa-1:5005", "rasa-2:5005"], actions=["actions-1:5055", "actions-2:5055"],
                    as_root=True, resolver="127.0.0.11", logs_to_stdout=True),
    "k8s": dict(directory="/tmp/nginx", rasa_listen="5005", actions_listen=None,
                rasa=["rasa-0.rasa-replicas.loan-assistant.svc.cluster.local:5005",
                      "rasa-1.rasa-replicas.loan-assistant.svc.cluster.local:5005"],
                actions=[], as_root=True, resolver="kube-dns.kube-system.svc.cluster.local", logs_to_stdout=True),
}
DEPLOY_NGINX_FILES = {"compose": ROOT / "deploy" / "nginx" / "compose.conf", "k8s": ROOT / "deploy" / "k8s" / "nginx.conf"}


def nginx_service(stack: Stack, rasa_ports: list[str], action_ports: list[str], directory: Path,
                  as_root: bool) -> Service:
    exe = nginx_executable()
    if exe is None:
        raise SystemExit("nginx is not installed: `scripts/setup_envs.sh scaled` installs Debian's package")
    env = stack.env
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(nginx_config(
        directory, f"127.0.0.1:{env['RASA_PORT']}", f"{env['ACTION_HOST']}:{env['ACTION_PORT']}",
        [f"127.0.0.1:{p}" for p in rasa_ports], [f"{env['ACTION_HOST']}:{p}" for p in action_ports], as_root),
        encoding="utf-8")
    subprocess.run([exe, "-t", "-q", "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)],
                   check=True)
    return Service("nginx", [exe, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf),
                             "-g", "daemon off;"], f"http://127.0.0.1:{env['RASA_PORT']}/nginx-health")


def scaled_overrides(database_url: str, tracker_url: str, redis_url: str, rasa_port: str,
                     overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The settings of the scaled shape: only URLs (and Rasa's lock lifetime) change."""
    front = f"http://127.0.0.1:{rasa_port}"
    return {
        "DATABASE_URL": database_url,
        "RASA_TRACKER_URL": tracker_url,
        "RASA_ENDPOINTS": "endpoints.scale.yml",
        "RASA_LOCK_STORE_URL": redis_url,
        "REDIS_URL": redis_url,
        "WECHAT_REDIS_URL": redis_url,
        "RASA_URL": front,
        "RASA_PUBLIC_URL": front,
        # Twilio signs the URL it calls: nginx's, not a replica's own port.
        "SMS_PUBLIC_URL": f"{front}/webhooks/sms/webhook",
        "TICKET_LOCK_LIFETIME": TICKET_LOCK_LIFETIME,
        **(overrides or {}),
    }


def scaled_stack(run_dir: Path, overrides: dict[str, str], shape: Shape, rasa_ports: list[str],
                 action_ports: list[str], nginx_dir: Path | None = None, as_root: bool | None = None) -> Stack:
    """A Stack of the scaled shape. ``overrides`` carry the ports (RASA_PORT and ACTION_PORT are
    nginx's fronts) and scaled_overrides(); the replicas listen on ``rasa_ports`` / ``action_ports``."""

    stack = Stack.from_env(run_dir, overrides, with_scheduler=False)
    env = stack.env
    as_root = os.geteuid() == 0 if as_root is None else as_root
    nginx = nginx_service(stack, rasa_ports[:shape.rasa], action_ports[:shape.actions], nginx_dir or run_dir / "nginx",
                          as_root)
    stack.services = [
        nginx,
        backend_service(env, workers=shape.backend_workers),
        *(actions_service(env, port, f"actions-{i}") for i, port in enumerate(action_ports[:shape.actions], 1)),
        *(rasa_service(env, port, f"rasa-{i}") for i, port in enumerate(rasa_ports[:shape.rasa], 1)),
        *(scheduler_service(f"scheduler-{i}") for i in range(1, shape.schedulers + 1)),
    ]
    return stack


def ensure_databases(*urls: str) -> None:
    """Create the PostgreSQL databases that do not exist yet (the server must be running)."""
    import psycopg

    for url in urls:
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgresql"):
            continue
        name = parts.path.lstrip("/")
        server = parts._replace(scheme="postgresql", path="/postgres").geturl()
        with psycopg.connect(server, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
                print(f"  created database {name}")


def prepare(stack: Stack, count: int | None = None) -> None:
    """Migrate the backend database and load the demo data into an empty one (as `make db`)."""
    argv = [APP_PY, "-m", "backend.cli", "setup", *(["--count", str(count)] if count else [])]
    subprocess.run(argv, cwd=ROOT, env=stack._child_env(), check=True)


# --------------------------------------------------------------------------- resident memory

def process_groups(run_dir: Path) -> dict[str, list[tuple[int, int, str]]]:
    """{service: [(pid, RSS in KiB, command)]} for every process of each service's group (uvicorn's
    and nginx's workers included), from /proc."""
    groups = {int(p.read_text()): p.stem for p in sorted(run_dir.glob("*.pid")) if p.read_text().strip().isdigit()}
    found: dict[str, list[tuple[int, int, str]]] = {name: [] for name in groups.values()}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            if pgrp not in groups:
                continue
            rss = next(int(line.split()[1]) for line in (proc / "status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, StopIteration, ValueError, IndexError):
            continue
        found[groups[pgrp]].append((int(proc.name), rss, cmd))
    return found


def print_status(run_dir: Path) -> int:
    total = 0
    for name, procs in process_groups(run_dir).items():
        for pid, rss, cmd in sorted(procs):
            total += rss
            print(f"  {name:<12} pid {pid:<7} RSS {rss / 1024:7.0f} MiB  {cmd[:80]}")
    print(f"  {'total':<12} {'':<11} RSS {total / 1024:7.0f} MiB")
    return total


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.scaled", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "status", "down", "render"])
    parser.add_argument("--rasa", type=int, default=Shape.rasa, help="Rasa replicas")
    parser.add_argument("--actions", type=int, default=Shape.actions, help="action-server replicas")
    parser.add_argument("--backend-workers", type=int, default=Shape.backend_workers, help="uvicorn workers")
    parser.add_argument("--schedulers", type=int, default=Shape.schedulers,
                        help="scheduler processes (one holds the lease, the others stand by)")
    parser.add_argument("--dispatchers", type=int, default=None,
                        help="outreach dispatcher threads in the lease holder (OUTREACH_DISPATCHERS)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--tracker-url", default=DEFAULT_TRACKER_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="pid files and logs (default var/run, where `make stop` looks)")
    parser.add_argument("--port-offset", type=int, default=0,
                        help="add this to every port (a second stack beside a running one)")
    args = parser.parse_args(argv)
    run_dir = (args.run_dir or ROOT / "var" / "run").resolve()
    if args.command == "status":
        print_status(run_dir)
        return
    if args.command == "down":
        stop_pidfiles(run_dir)
        print("scaled stack stopped")
        return
    if args.command == "render":
        for name, path in DEPLOY_NGINX_FILES.items():
            path.write_text(nginx_config(**DEPLOY_NGINX[name]), encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
        return
    for url, port, what in ((args.database_url, 5432, "PostgreSQL"), (args.tracker_url, 5432, "PostgreSQL"),
                            (args.redis_url, 6379, "Redis")):
        if not reachable(url, port):
            raise SystemExit(f"{what} is not reachable at {urlsplit(url).netloc}: the scaled shape needs it running")
    if nginx_executable() is None:
        raise SystemExit("nginx is not installed: `scripts/setup_envs.sh scaled` installs Debian's package")
    shape = Shape(args.rasa, args.actions, args.backend_workers, args.schedulers)
    started = time.monotonic()
    stop_pidfiles(run_dir)
    from bot.settings import merged_env

    base = merged_env()
    fronts = {k: str(int(base[k]) + args.port_offset) for k in ("BACKEND_PORT", "RASA_PORT", "ACTION_PORT")}
    rasa_front, action_front = fronts["RASA_PORT"], fronts["ACTION_PORT"]
    # Replicas listen 100 ports above the fronts: 5105, 5106 ... and 5155, 5156 ...
    rasa_ports = [str(int(rasa_front) + 100 + i) for i in range(shape.rasa)]
    action_ports = [str(int(action_front) + 100 + i) for i in range(shape.actions)]
    overrides = scaled_overrides(args.database_url, args.tracker_url, args.redis_url, rasa_front, {
        **fronts, "BACKEND_URL": f"http://127.0.0.1:{fronts['BACKEND_PORT']}",
        **({"OUTREACH_DISPATCHERS": str(args.dispatchers)} if args.dispatchers else {})})
    nginx_dir = run_dir / "nginx" if args.run_dir else ROOT / "var" / "nginx"
    stack = scaled_stack(run_dir, overrides, shape, rasa_ports, action_ports, nginx_dir=nginx_dir)
    print(f"scaled stack: {shape.rasa} Rasa, {shape.actions} action servers, backend x{shape.backend_workers}, "
          f"{shape.schedulers} scheduler(s) (logs in {run_dir}, nginx in {nginx_dir})", flush=True)
    ensure_databases(args.database_url, args.tracker_url)
    stack.start(prepare=lambda: prepare(stack))
    e = stack.env
    where = f" --run-dir {run_dir}" if args.run_dir else ""
    print(f"""
The scaled assistant is running ({time.monotonic() - started:.0f} s to start):
  Web chat                          http://127.0.0.1:{e['BACKEND_PORT']}/chat
  Staff console                     http://127.0.0.1:{e['BACKEND_PORT']}/console
  Rasa (nginx; replicas {', '.join(rasa_ports)})   http://127.0.0.1:{e['RASA_PORT']}
  Actions (nginx; replicas {', '.join(action_ports)})  http://{e['ACTION_HOST']}:{e['ACTION_PORT']}
  Backend API ({shape.backend_workers} workers)            http://127.0.0.1:{e['BACKEND_PORT']}/docs
  Databases  {args.database_url} (backend, scheduler jobs), {args.tracker_url} (conversations)
  Redis      {args.redis_url} (conversation locks, rate limits, WeChat token)
Memory: python -m scripts.scaled status{where}.  Stop with: {'make stop' if not where else 'python -m scripts.scaled down' + where}""")


if __name__ == "__main__":
    main(sys.argv[1:])
