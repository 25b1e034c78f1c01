"""Backend commands: migrate, seed demo data, recompute segments, or all set-up at once.

    python -m backend.cli setup            # migrate, and load demo data if the database is empty
    python -m backend.cli seed --count 240 --seed 20261122 [--as-of 2026-11-23]
    python -m backend.cli export-nlu-review [--out data/nlu/reviewed.yml]   # then `make model`
    python -m backend.cli anonymise [--older-than-days N] [--closed-older-than-days N] [--dry-run]
    python -m backend.cli export-customer --id N --out customer-N.json
    python -m backend.cli delete-customer --id N [--dry-run]
    python -m backend.cli contract [--check]   # config/contract.json: the enums and phone pattern the bot reads
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, select

from backend.core.clock import Clock
from backend.core.config import ROOT, get_settings, load_rules
from backend.db import make_engine, make_sessionmaker
from backend.models import Customer
from bot.settings import apply_env


def migrate(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    cfg = Config(str(ROOT / "backend" / "alembic.ini"))
    cfg.cmd_opts = argparse.Namespace(x=[f"url={url}"])
    command.upgrade(cfg, "head")


def seed(url: str, count: int, seed_value: int, as_of: date | None, only_if_empty: bool) -> None:
    from backend.demo_data import generate

    settings = get_settings()
    rules = load_rules(settings.business_rules_path)
    clock = Clock(settings.frozen_date)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        existing = db.scalar(select(func.count()).select_from(Customer))
        if existing and only_if_empty:
            print(f"demo data: {existing} customers already present, left as is")
            return
        if existing:
            sys.exit("demo data: the database already has customers; seed an empty database")
        started = time.monotonic()
        book = generate(db, rules, count=count, seed=seed_value, as_of=as_of or clock.today(), now=clock.now())
        db.commit()
        print(f"demo data: {book.customers} customers, {book.loans} loans, {book.payments} payments "
              f"in {time.monotonic() - started:.1f}s")
    engine.dispose()


DEMO_STAFF = (("agent1", "客服小王", "agent"), ("agent2", "客服小李", "agent"), ("supervisor1", "主管老陈", "supervisor"))


def seed_console(url: str) -> None:
    """Demo staff accounts (password CONSOLE_DEMO_PASSWORD) and the canned replies (texts/zh/canned.yml),
    once."""
    import texts
    from backend.models import CannedReply, StaffUser
    from backend.services import staff

    settings = get_settings()
    password = settings.console_demo_password
    clock = Clock(settings.frozen_date)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        if password and not db.scalar(select(func.count()).select_from(StaffUser)):
            for username, name, role in DEMO_STAFF:
                staff.create_user(db, username, name, role, password, clock.now(), "setup")
            print(f"console: demo staff {', '.join(u for u, _, _ in DEMO_STAFF)} (password CONSOLE_DEMO_PASSWORD)")
        if not db.scalar(select(func.count()).select_from(CannedReply)):
            rows = texts.groups("canned").values()
            db.add_all(CannedReply(title=r["title"], text=r["text"], position=i) for i, r in enumerate(rows))
        db.commit()
    engine.dispose()


def create_staff(url: str, username: str, name: str, role: str) -> None:
    """Add a staff account; the password is read from the terminal (or STAFF_PASSWORD)."""
    import getpass

    from backend.core.errors import AppError
    from backend.services import staff

    password = get_settings().staff_password or getpass.getpass(f"{username} 的密码: ")
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        try:
            staff.create_user(db, username, name, role, password, Clock().now(), "cli")
        except AppError as exc:
            sys.exit(f"create-staff: {exc.message_en}")
        db.commit()
    engine.dispose()
    print(f"console: {role} {username} created")


def recompute(url: str) -> None:
    from backend.services.segments import recompute_all

    settings = get_settings()
    clock = Clock(settings.frozen_date)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        counts = recompute_all(db, load_rules(settings.business_rules_path), clock.today(), clock.now())
        db.commit()
    print("segments:", counts)


def export_nlu_review(url: str, out: Path, nlu_dir: Path) -> None:
    """The understanding inbox's confirmed and corrected examples -> a Rasa NLU file (regenerated whole)."""
    from backend.services import nlu_review

    clock = Clock(get_settings().frozen_date)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        result = nlu_review.export(db, out, nlu_dir, clock.now(), actor="cli")
        db.commit()
    engine.dispose()
    for text, intent, others in result.conflicts:
        where = "; ".join(f"{other} in {', '.join(files)}" for other, files in sorted(others.items()))
        print(f"WARNING conflict: {text!r} reviewed as {intent} but already {where}; not written "
              "(settle it in the hand-written data)", file=sys.stderr)
    for text, intent in result.unsafe:
        print(f"WARNING skipped: {text!r} ({intent}) cannot be written as a training example", file=sys.stderr)
    print(f"nlu review: {result.written} examples of {result.intents} intents written to {out} "
          f"({result.newly_exported} new); {len(result.redundant)} already in the training data, "
          f"{len(result.conflicts)} conflicts, {len(result.unsafe)} skipped")
    if result.newly_exported:
        print("run `make model` to retrain with them")


def default_actor() -> str:
    """Who runs a data-rights command, as the audit log records it: cli:<login name>."""
    import getpass

    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        name = "unknown"
    return f"cli:{name}"[:50]


def _print_counts(counts: dict[str, int]) -> None:
    for table, n in counts.items():
        print(f"  {table:32} {n}")


def anonymise(url: str, older_than_days: int | None, closed_older_than_days: int | None, dry_run: bool,
              actor: str) -> None:
    """Anonymise conversation texts and closed records past the retention periods (business.yml retention:)."""
    from backend.services import retention

    settings = get_settings()
    rules = load_rules(settings.business_rules_path).retention
    clock = Clock(settings.frozen_date)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        try:
            result = retention.anonymise(db, rules, clock.now(), actor=actor, dry_run=dry_run,
                                         conversation_days=older_than_days, closed_record_days=closed_older_than_days)
        except ValueError as exc:
            sys.exit(f"anonymise: {exc}")
        if not dry_run:
            db.commit()
    engine.dispose()
    verb = "would anonymise (dry run, nothing written)" if dry_run else "anonymised"
    print(f"retention: conversation texts before {result.conversation_cutoff:%Y-%m-%d %H:%M}, "
          f"closed records before {result.closed_cutoff:%Y-%m-%d %H:%M}; {verb} {result.total} rows:")
    _print_counts(result.counts)


def export_customer(url: str, customer_id: int, out: Path, actor: str) -> None:
    """Everything held about one customer -> a JSON file (PIPL Art. 45). Audited."""
    import json

    from backend.services import retention

    settings = get_settings()
    clock = Clock(settings.frozen_date)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        try:
            data = retention.export_customer(db, customer_id, clock.now(), actor=actor,
                                             review_secret=settings.nlu_review_hash_secret)
        except LookupError as exc:
            sys.exit(f"export-customer: {exc}")
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # personal data: owner only
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2)
            f.write("\n")
        db.commit()  # the audit entry, once the file is written
    engine.dispose()
    sections = ", ".join(f"{k} {len(v)}" for k, v in data.items() if isinstance(v, list))
    print(f"customer {customer_id}: exported to {out} ({sections})")


def delete_customer(url: str, customer_id: int, dry_run: bool, actor: str) -> None:
    """Erase / de-identify one customer's personal data (PIPL Art. 47). Audited."""
    from backend.services import retention

    settings = get_settings()
    clock = Clock(settings.frozen_date)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        try:
            counts = retention.erase_customer(db, customer_id, clock.now(), actor=actor,
                                              review_secret=settings.nlu_review_hash_secret, dry_run=dry_run)
        except LookupError as exc:
            sys.exit(f"delete-customer: {exc}")
        except retention.RetentionRefused as exc:
            sys.exit(f"delete-customer: refused, customer {customer_id}'s data is still needed: {exc}")
        if not dry_run:
            db.commit()
    engine.dispose()
    total = sum(counts.values())
    if dry_run:
        print(f"customer {customer_id}: would change {total} rows (dry run, nothing written):")
    elif total:
        print(f"customer {customer_id}: personal data erased by {actor}; loans, instalments, payments and "
              f"promises kept, de-identified ({total} rows changed):")
    else:
        print(f"customer {customer_id}: already erased, nothing changed")
    _print_counts(counts)


CONTRACT_FILE = ROOT / "config" / "contract.json"


def contract_text() -> str:
    """config/contract.json as backend/models/enums.py says it should be."""
    from backend.models.enums import contract

    return json.dumps(contract(), ensure_ascii=False, indent=2) + "\n"


def write_contract(out: Path, check: bool) -> None:
    expected = contract_text()
    if check:
        if not out.exists() or out.read_text(encoding="utf-8") != expected:
            sys.exit(f"{out} is out of date: run python -m backend.cli contract")
        print(f"{out}: up to date")
        return
    out.write_text(expected, encoding="utf-8")
    print(f"bot contract written to {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m backend.cli")
    parser.add_argument("--database-url", default=None, help="default: the DATABASE_URL setting")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate")
    sub.add_parser("recompute-segments")
    p = sub.add_parser("create-staff", help="add a console account (agent or supervisor)")
    p.add_argument("username")
    p.add_argument("--name", required=True)
    p.add_argument("--role", choices=("agent", "supervisor"), default="agent")
    p = sub.add_parser("export-nlu-review", help="write the confirmed examples of the understanding inbox "
                                                "to a Rasa NLU file (regenerated whole)")
    p.add_argument("--out", type=Path, default=ROOT / "data" / "nlu" / "reviewed.yml",
                   help="default: data/nlu/reviewed.yml")
    p.add_argument("--nlu-dir", type=Path, default=ROOT / "data" / "nlu",
                   help="the hand-written training data the examples are checked against (default: data/nlu)")
    p = sub.add_parser("anonymise", help="anonymise conversation texts and closed records past the retention "
                                         "periods (config/business.yml retention:)")
    p.add_argument("--older-than-days", type=int, default=None,
                   help="conversation texts older than this (default: retention.conversation_days)")
    p.add_argument("--closed-older-than-days", type=int, default=None,
                   help="closed records older than this (default: retention.closed_record_days)")
    p.add_argument("--dry-run", action="store_true", help="print the counts, change nothing")
    p.add_argument("--by", default=None, help="who runs it, for the audit log (default: cli:<login name>)")
    p = sub.add_parser("export-customer", help="write everything held about one customer to a JSON file")
    p.add_argument("--id", type=int, required=True, dest="customer_id")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--by", default=None, help="who runs it, for the audit log (default: cli:<login name>)")
    p = sub.add_parser("delete-customer", help="erase one customer's personal data (loans and payments are "
                                               "kept, de-identified)")
    p.add_argument("--id", type=int, required=True, dest="customer_id")
    p.add_argument("--dry-run", action="store_true", help="print the counts, change nothing")
    p.add_argument("--by", default=None, help="who runs it, for the audit log (default: cli:<login name>)")
    p = sub.add_parser("contract", help="write the enums and the phone pattern the bot side reads "
                                        "(backend/models/enums.py -> config/contract.json)")
    p.add_argument("--out", type=Path, default=CONTRACT_FILE, help="default: config/contract.json")
    p.add_argument("--check", action="store_true", help="fail if the file differs from what would be written")
    for name in ("seed", "setup"):
        p = sub.add_parser(name)
        p.add_argument("--count", type=int, default=240)
        p.add_argument("--seed", type=int, default=20261122)
        p.add_argument("--as-of", type=date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    if args.cmd == "contract":  # no database, no settings
        write_contract(args.out.resolve(), args.check)
        return
    apply_env()  # .env.example defaults < .env < environment, same as every other process
    url = args.database_url or get_settings().database_url
    if args.cmd in ("migrate", "setup"):
        migrate(url)
        print("database: migrated to the latest schema")
    if args.cmd in ("seed", "setup"):
        seed(url, args.count, args.seed, args.as_of, only_if_empty=args.cmd == "setup")
        seed_console(url)
    if args.cmd == "create-staff":
        create_staff(url, args.username, args.name, args.role)
    if args.cmd == "recompute-segments":
        recompute(url)
    if args.cmd == "export-nlu-review":
        export_nlu_review(url, args.out.resolve(), args.nlu_dir.resolve())
    if args.cmd == "anonymise":
        anonymise(url, args.older_than_days, args.closed_older_than_days, args.dry_run, args.by or default_actor())
    if args.cmd == "export-customer":
        export_customer(url, args.customer_id, args.out.resolve(), args.by or default_actor())
    if args.cmd == "delete-customer":
        delete_customer(url, args.customer_id, args.dry_run, args.by or default_actor())


if __name__ == "__main__":
    main()
