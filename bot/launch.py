"""Launch glue for the Rasa side: train (with a model cache) and run the Rasa and action servers.

    python -m bot.launch train     # train only if config, domain, data or bot/ changed
    python -m bot.launch rasa      # Rasa server with the HTTP API, on RASA_PORT
    python -m bot.launch actions   # action server on ACTION_HOST:ACTION_PORT, ACTION_SERVER_TOKEN required
    python -m bot.launch model     # print the path of the current model
    python -m bot.launch eval      # cross-validated and cross-source NLU evaluation into reports/nlu

Models are cached under $LOAN_ASSISTANT_CACHE (default ~/.cache/loan-assistant/models) keyed by a
hash of everything that goes into training, so a fresh clone with unchanged data trains nothing.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.settings import BOT_SECRETS, ROOT, apply_env, cors_origins, credentials_file, get_settings, preflight

# Everything a trained model's weights depend on. The entity extractor (bot/nlu/entities.py and its
# lexicon) runs only at inference and is imported from source, so editing it needs no retraining.
TRAINING_INPUTS = ["config.yml", "domain.yml", "data", "bot/dictionary", "bot/nlu/normalize.py",
                   "bot/nlu/components.py", "bot/nlu/linear_intent.py", "bot/nlu/featurizer.py",
                   "bot/nlu/encoder.py", "bot/nlu/intent_cues.yml"]
CACHE = get_settings().cache_dir / "models"


def training_hash() -> str:
    h = hashlib.sha256()
    import rasa  # the Rasa version is part of what a model depends on

    h.update(rasa.__version__.encode())
    for entry in TRAINING_INPUTS:
        path = ROOT / entry
        if not path.exists():
            continue
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def model_path() -> Path:
    return ROOT / "models" / f"{training_hash()}.tar.gz"


def train() -> Path:
    target = model_path()
    cached = CACHE / target.name
    target.parent.mkdir(exist_ok=True)
    if target.exists():
        print(f"model: up to date ({target.name})")
        return target
    if cached.exists():
        shutil.copy2(cached, target)
        print(f"model: restored from cache ({target.name})")
        return target
    print("model: training (config, domain or data changed); this takes several minutes...", flush=True)
    cmd = [sys.executable, "-m", "rasa", "train", "--fixed-model-name", target.stem.removesuffix(".tar"),
           "--out", str(target.parent)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target, cached)
    for old in target.parent.glob("*.tar.gz"):
        if old != target:
            old.unlink()
    return target


def evaluate() -> None:
    """`make eval`: cross-validated NLU reports into reports/nlu, then a summary of the numbers."""
    out = ROOT / "reports" / "nlu"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "rasa", "test", "nlu", "--nlu", "data/nlu", "--config", "config.yml",
                    "--cross-validation", "--folds", "5", "--out", str(out)], cwd=ROOT, check=True)
    import json

    lines = []
    for name in sorted(out.glob("*_report.json")):
        report = json.loads(name.read_text(encoding="utf-8"))
        macro = report.get("macro avg", {})
        lines.append(f"{name.stem}: macro F1 {macro.get('f1-score', 0):.3f}, "
                     f"weighted F1 {report.get('weighted avg', {}).get('f1-score', 0):.3f}")
    # Generalisation: each public source family held out in turn, and the paraphrase check.
    subprocess.run([sys.executable, "-m", "scripts.cross_source_eval", "--sweep"], cwd=ROOT, check=True)
    lines += ["", "cross-source (reports/nlu/cross_source.md):",
              (out / "cross_source.md").read_text(encoding="utf-8")]
    (out / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def load_rules() -> None:
    """The business rules from the backend (bot/rules.py), once, before the server takes requests: the
    backend starts at the same time, so this waits for it (bot.rules.STARTUP_WAIT); without them the
    process does not start."""
    from bot import rules

    try:
        rules.load()
    except rules.RulesUnavailable as exc:
        sys.exit(f"cannot start: {exc}")


class ActionServerSessions:
    """Rasa 3.6 opens a new aiohttp session, so a new TCP connection, for every custom action it runs
    (``rasa.utils.endpoints.EndpointConfig.request``: ``async with self.session()``): a connect and a
    teardown on both sides for each of the two or three action calls of a turn. :meth:`install`
    keeps one session per endpoint (URL, headers, auth) and event loop instead, reused with
    keep-alive, and closes them when the server stops."""

    def __init__(self) -> None:
        self._sessions: dict[tuple, Any] = {}

    def install(self) -> None:
        import rasa.core.run as rasa_run
        from rasa.utils.endpoints import EndpointConfig

        pool = self

        def session(endpoint: EndpointConfig) -> Any:
            return _Borrowed(pool.get(endpoint, keep_alive_session))

        EndpointConfig.session = session
        configure_app = rasa_run.configure_app

        def configure_and_close_at_stop(*args: Any, **kwargs: Any) -> Any:
            app = configure_app(*args, **kwargs)
            app.register_listener(pool.close, "after_server_stop")
            return app

        rasa_run.configure_app = configure_and_close_at_stop

    def get(self, endpoint: Any, make: Any) -> Any:
        import asyncio
        import json

        loop = asyncio.get_running_loop()
        key = (loop, endpoint.url, json.dumps(endpoint.headers or {}, sort_keys=True, default=str),
               json.dumps(endpoint.basic_auth or {}, sort_keys=True, default=str))
        session = self._sessions.get(key)
        if session is None or session.closed:
            for other in [k for k in self._sessions if k[0].is_closed()]:
                self._sessions.pop(other)  # its loop is gone
            session = self._sessions[key] = make(endpoint)
        return session

    async def close(self, *_: Any) -> None:
        for key in list(self._sessions):
            session = self._sessions.pop(key)
            if not session.closed:
                await session.close()


# Idle connections are dropped before the action server (Sanic: KEEP_ALIVE_TIMEOUT 5 s) closes them,
# so a call never picks a connection the server is closing at that moment.
KEEP_ALIVE_SECONDS = 4.0


def keep_alive_session(endpoint: Any) -> Any:
    """What ``EndpointConfig.session`` makes (headers, basic auth, Rasa's request timeout), with a
    connection pool that keeps connections alive for KEEP_ALIVE_SECONDS."""
    import aiohttp
    from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT

    auth = aiohttp.BasicAuth(endpoint.basic_auth["username"], endpoint.basic_auth["password"]) \
        if endpoint.basic_auth else None
    return aiohttp.ClientSession(headers=endpoint.headers, auth=auth,
                                 timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                                 connector=aiohttp.TCPConnector(keepalive_timeout=KEEP_ALIVE_SECONDS))


class _Borrowed:
    """``async with`` over a shared session that does not close it at the end."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def __aenter__(self) -> Any:
        return self.session

    async def __aexit__(self, *exc: Any) -> bool:
        return False


# --------------------------------------------------------------------------- Rasa 3.6 hot paths
# What `make bench` measured Rasa spending a turn on besides understanding and deciding (py-spy,
# reports/profile-rasa.txt), fixed in this process without changing what Rasa does.

def validate_action_results_with_one_validator() -> None:
    """Rasa validates every action server answer with ``jsonschema.validate(result, schema)``, which
    checks the schema itself against the JSON Schema meta-schema first, every call: about a fifth
    of a turn's CPU. The same validation with the validator built (and its schema checked) once;
    the same error (the best match, with Rasa's note appended) on an invalid answer."""
    from jsonschema import ValidationError, validators
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import DOCS_BASE_URL, RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)

    def _validate_action_result(self: Any, result: dict) -> bool:
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            ". Failed to validate Action server response from API, make sure your response from the Action "
            f"endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions")
        raise error

    RemoteAction._validate_action_result = _validate_action_result


def resolve_event_types_once() -> None:
    """Loading a tracker turns each stored event into its class by ``Event.resolve_by_type``, which
    walks every subclass of Event (``all_subclasses``, with ``inspect.isabstract`` on each) for each
    event. Resolved names are remembered; an unknown name still goes the original way (and fails
    or falls back as before)."""
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    known: dict[str, type] = {}

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        found = known.get(type_name)
        if found is not None:
            return found
        found = original(type_name, default)
        if found is not None and found is not default:
            known[type_name] = found
        return found

    Event.resolve_by_type = staticmethod(resolve_by_type)


def save_trackers_without_reloading() -> None:
    """SQLTrackerStore.save first reloads and deserialises the whole stored session
    (``stream_events``: ``retrieve``) only to count its events for the event broker, then counts them
    again with a query to know which to insert. Here one count query gives both: the same new
    events published to the broker, then inserted, in one transaction."""
    import itertools
    import json

    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.nlu.constants import INTENT_NAME_KEY

    async def save(self: Any, tracker: Any) -> None:
        with self.session_scope() as session:
            stored = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False).count()
            new_events = list(itertools.islice(tracker.events, stored, len(tracker.events)))
            if self.event_broker is not None:
                await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)
            for event in new_events:
                data = event.as_dict()
                session.add(self.SQLEvent(
                    sender_id=tracker.sender_id, type_name=event.type_name, timestamp=data.get("timestamp"),
                    intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                    action_name=data.get("name"), data=json.dumps(data)))
            session.commit()

    SQLTrackerStore.save = save


def validate_appended_events_with_one_validator() -> None:
    """POST /conversations/{id}/tracker/events (how the backend delivers notices and staff replies)
    validates the body with ``jsonschema.validate(events, EVENTS_SCHEMA)``, which checks the schema
    against the meta-schema first, every call: about a third of Rasa's CPU per delivered notice
    (`make bench-outreach`, py-spy). The same validation with the validator built once; the same
    400 answer on an invalid body."""
    from http import HTTPStatus

    import rasa.server as server
    from jsonschema import validators
    from jsonschema.exceptions import best_match

    cls = validators.validator_for(server.EVENTS_SCHEMA)
    cls.check_schema(server.EVENTS_SCHEMA)
    validator = cls(server.EVENTS_SCHEMA)

    def validate_events_in_request_body(request: Any) -> None:
        events = request.json if isinstance(request.json, list) else [request.json]
        error = best_match(validator.iter_errors(events))
        if error is not None:
            raise server.ErrorResponse(
                HTTPStatus.BAD_REQUEST, "BadRequest",
                f"Failed to validate the events format. For more information about the format visit the docs. "
                f"Error: {error}", help_url=server._docs("/pages/http-api")) from error

    server.validate_events_in_request_body = validate_events_in_request_body


def sqlite_tracker_store_kept_open() -> None:
    """The embedded shape's SQLite tracker store (SQLAlchemy 1.4 gives file databases no pool) opened
    a new connection for each load and each save of a tracker and closed it after, and committed
    with a full fsync in SQLite's default rollback-journal mode: all inside Rasa's event loop (the
    tracker store is synchronous), so every conversation waited for it. Here its connections are
    pooled and kept open, in WAL mode with ``synchronous=NORMAL``: a commit is an append to the log,
    still atomic and durable when a process crashes or is killed (a power loss or OS crash may lose
    the last commits), and readers (the tests, the console) never block the writer. PostgreSQL (the
    scale-out shape) is untouched."""
    import rasa.core.tracker_store as rasa_tracker_store
    from sqlalchemy import event
    from sqlalchemy.engine import Engine, make_url
    from sqlalchemy.pool import QueuePool

    engine_kwargs = rasa_tracker_store.create_engine_kwargs

    def create_engine_kwargs(url: Any) -> dict[str, Any]:
        parsed = make_url(str(url)) if isinstance(url, str) else url
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            return {"poolclass": QueuePool, "pool_size": 2, "max_overflow": 8,
                    "connect_args": {"check_same_thread": False}}
        return engine_kwargs(url)

    rasa_tracker_store.create_engine_kwargs = create_engine_kwargs

    if not event.contains(Engine, "connect", sqlite_wal):
        event.listen(Engine, "connect", sqlite_wal)


def sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    """On each new SQLite connection of the process (SQLAlchemy's connect event): WAL, synchronous=NORMAL."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def run_rasa(env: dict[str, str]) -> None:
    """Rasa on 127.0.0.1 only. The profile (APP_ENV) picks the channels: production has no REST
    channel (credentials.production.yml). CORS only for CORS_ORIGINS (never *: Rasa's CORS allows
    credentials); without origins Rasa sends no CORS headers at all."""
    preflight(env, "rasa", BOT_SECRETS)
    # RASA_MODEL_PATH: another model than the current data's (an experiment, e.g. bench.turns --model).
    override = env.get("RASA_MODEL_PATH")
    model = Path(override) if override else model_path()
    if not model.exists():
        sys.exit(f"no trained model for the current data ({model.name}): run `make model` first")
    load_rules()  # the channel connectors' and the event broker's rules, before any message
    origins = [o for o in cors_origins(env) if o != "*"]
    # Through bot.logscrub: every log record of the Rasa server (and the channels in it) is scrubbed
    # of phone, ID, card numbers and codes and capped at 2,000 characters, whatever Rasa configures.
    # In this process, not exec'd: an exec'd command line (--auth-token) is readable by every user of
    # the host (ps, /proc/<pid>/cmdline); the sys.argv that run_module sets here is not.
    from bot.logscrub import run_module

    if speedups(env):
        ActionServerSessions().install()
        validate_action_results_with_one_validator()
        resolve_event_types_once()
        save_trackers_without_reloading()
        sqlite_tracker_store_kept_open()
        validate_appended_events_with_one_validator()
    run_module([
        "rasa", "run", "--enable-api", "--auth-token", env["RASA_API_TOKEN"],
        # RASA_HOST: a container's own (private) address in deploy/; 127.0.0.1 everywhere else.
        "--model", str(model), "--port", env["RASA_PORT"], "--interface", env.get("RASA_HOST") or "127.0.0.1",
        "--endpoints", env["RASA_ENDPOINTS"], "--credentials", credentials_file(env),
        *(["--cors", *origins] if origins else []),
    ])


def run_actions(env: dict[str, str]) -> None:
    """The action server on ACTION_HOST (127.0.0.1 by default), answering only requests that carry
    ACTION_SERVER_TOKEN (actions/auth_middleware.py; Rasa sends it, endpoints*.yml)."""
    preflight(env, "actions", BOT_SECRETS)
    load_rules()  # the actions' rules, before the first request
    from actions.auth_middleware import serve
    from bot.logscrub import install as install_log_scrubber

    install_log_scrubber()  # every record scrubbed and capped (bot/logscrub.py)
    serve(host=env.get("ACTION_HOST") or "127.0.0.1", port=int(env["ACTION_PORT"]),
          token=env.get("ACTION_SERVER_TOKEN", ""))


# Single-threaded BLAS and OpenMP in the servers. NumPy's OpenBLAS otherwise starts a worker thread
# per core that spins after every small matrix product: measured (make bench, /proc/<pid>/task) at
# ~24 ms of CPU burnt per message beside a 6 ms parse, on cores the other processes need. A server
# turn's matrices are tiny; training and evaluation keep their threads (only `rasa`/`actions` here).
SERVER_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def speedups(env: dict[str, str]) -> bool:
    """RASA_SPEEDUPS=0 runs Rasa as shipped (no hot-path fixes, BLAS threads as NumPy starts them):
    the benchmark's baseline (bench.turns --baseline) and a way to rule the fixes out."""
    return (env.get("RASA_SPEEDUPS") or "1") != "0"


def single_threaded_math(env: dict[str, str]) -> None:
    """Set SERVER_THREADS (unless the settings chose otherwise) before NumPy is first imported."""
    for key, value in SERVER_THREADS.items():
        if key not in env:
            os.environ[key] = value


def main(argv: list[str]) -> None:
    cmd = argv[0] if argv else ""
    env = apply_env()  # imports no NumPy: the thread counts below are still in time
    if cmd in ("rasa", "actions") and speedups(env):
        single_threaded_math(env)
    os.chdir(ROOT)
    if cmd == "train":
        train()
    elif cmd == "eval":
        evaluate()
    elif cmd == "model":
        print(model_path())
    elif cmd == "rasa":
        run_rasa(env)
    elif cmd == "actions":
        run_actions(env)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
