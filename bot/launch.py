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


def run_rasa(env: dict[str, str]) -> None:
    """Rasa on 127.0.0.1 only. The profile (APP_ENV) picks the channels: production has no REST
    channel (credentials.production.yml). CORS only for CORS_ORIGINS (never *: Rasa's CORS allows
    credentials); without origins Rasa sends no CORS headers at all."""
    preflight(env, "rasa", BOT_SECRETS)
    model = model_path()
    if not model.exists():
        sys.exit(f"no trained model for the current data ({model.name}): run `make model` first")
    load_rules()  # the channel connectors' and the event broker's rules, before any message
    origins = [o for o in cors_origins(env) if o != "*"]
    # Through bot.logscrub: every log record of the Rasa server (and the channels in it) is scrubbed
    # of phone, ID, card numbers and codes and capped at 2,000 characters, whatever Rasa configures.
    # In this process, not exec'd: an exec'd command line (--auth-token) is readable by every user of
    # the host (ps, /proc/<pid>/cmdline); the sys.argv that run_module sets here is not.
    from bot.logscrub import run_module

    run_module([
        "rasa", "run", "--enable-api", "--auth-token", env["RASA_API_TOKEN"],
        "--model", str(model), "--port", env["RASA_PORT"], "--interface", "127.0.0.1",
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


def main(argv: list[str]) -> None:
    env = apply_env()
    os.chdir(ROOT)
    cmd = argv[0] if argv else ""
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
