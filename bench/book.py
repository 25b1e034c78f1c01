"""A large generated loan book and the time to plan a day's outreach over it.

    .venv-app/bin/python -m bench.book --loans 100000            # a fresh SQLite file in var/bench
    .venv-app/bin/python -m bench.book --loans 100000 --url postgresql+psycopg://postgres@127.0.0.1:5432/bench

generate_book() writes customers, identities, loans and instalments with bulk INSERTs (the demo
generator books every payment through the ledger: right for 240 borrowers, hours for 100,000). The
amounts are plausible, not the amortization formula: planning only reads them. About 6 % of the
loans carry unpaid instalments past due, 5 % of paid instalments were paid late.
"""
from __future__ import annotations

import argparse
import random
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from backend.core.clock import SHANGHAI
from backend.models import Channel, ChannelIdentity, Customer, Instalment, Loan, LoanStatus
from backend.services.money import add_months

CHUNK = 5000


def _insert(db: Session, model, rows: list[dict], returning: bool = False) -> list[int]:
    ids: list[int] = []
    table = model.__table__
    for i in range(0, len(rows), CHUNK):
        part = rows[i:i + CHUNK]
        if returning:
            ids += db.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), part).scalars().all()
        else:
            db.execute(insert(table), part)
    return ids


def generate_book(db: Session, loans: int, as_of: date, seed: int = 1) -> dict[str, int]:
    """``loans`` loans for about 0.85 as many borrowers, due dates spread over the month; commits."""
    rng = random.Random(seed)
    now = datetime.combine(as_of, datetime.min.time(), SHANGHAI)
    stamp = rng.randrange(10**6)
    n_customers = max(1, loans * 85 // 100)
    customer_ids = _insert(db, Customer, [dict(
        name="测试" + str(i), phone=f"19{stamp % 100:02d}{i:07d}", id_number=f"110101199001{i:06d}",
        preferred_channel=rng.choice([Channel.wechat, Channel.sms, Channel.web]),
        consent_reminders=rng.random() > 0.05, consent_marketing=False, risk_tier="low", value_tier="basic",
        created_at=now) for i in range(n_customers)], returning=True)
    phones = {cid: f"19{stamp % 100:02d}{i:07d}" for i, cid in enumerate(customer_ids)}
    idents = []
    for cid in customer_ids:
        idents.append(dict(channel=Channel.sms, external_id="+86" + phones[cid], customer_id=cid, verified=True,
                           opted_out=False, created_at=now, last_inbound_at=None))
        idents.append(dict(channel=Channel.web, external_id=str(cid), customer_id=cid, verified=True, opted_out=False,
                           created_at=now, last_inbound_at=None))
        if rng.random() < 0.5:
            idents.append(dict(channel=Channel.wechat, external_id=f"o{stamp}x{cid:09d}", customer_id=cid, verified=True,
                               opted_out=False, created_at=now,
                               last_inbound_at=now - timedelta(hours=rng.randrange(1, 120))))
    _insert(db, ChannelIdentity, idents)
    plans = []
    for i in range(loans):
        term = rng.choice([6, 12, 12, 24, 24, 36])
        start = as_of - timedelta(days=rng.randrange(5, 30 * term))
        plans.append((rng.choice(customer_ids), term, start, Decimal(rng.randrange(30, 2000) * 100)))
    loan_ids = _insert(db, Loan, [dict(
        loan_no=f"BN{stamp:06d}{i:07d}", customer_id=cid, product="xiaofeidai", principal=principal,
        annual_rate=Decimal("0.12"), term_months=term, start_date=start, status=LoanStatus.active, created_at=now)
        for i, (cid, term, start, principal) in enumerate(plans)], returning=True)
    rows, overdue_loans = [], 0
    for loan_id, (_, term, start, principal) in zip(loan_ids, plans):
        behind = rng.random() < 0.06  # stopped paying one to three instalments ago
        stop = rng.randrange(1, 4) if behind else 0
        past = [k for k in range(1, term + 1) if add_months(start, k) < as_of]
        unpaid_from = len(past) - stop + 1 if behind else term + 1
        overdue_loans += behind and bool(past)
        share = (principal / term).quantize(Decimal("0.01"))
        for k in range(1, term + 1):
            due = add_months(start, k)
            p = principal - share * (term - 1) if k == term else share
            interest = ((principal - share * (k - 1)) * Decimal("0.01")).quantize(Decimal("0.01"))
            paid = due < as_of and k < unpaid_from
            late = rng.choice([0] * 19 + [rng.randrange(1, 10)]) if paid else 0
            rows.append(dict(loan_id=loan_id, seq=k, due_date=due, principal=p, interest=interest, fee=Decimal(0),
                             paid_principal=p if paid else Decimal(0), paid_interest=interest if paid else Decimal(0),
                             paid_fee=Decimal(0), penalty_charged=Decimal(0), paid_penalty=Decimal(0),
                             status="paid" if paid else ("overdue" if due < as_of else "pending"),
                             settled_on=due + timedelta(days=late) if paid else None))
    _insert(db, Instalment, rows)
    db.commit()
    return {"customers": len(customer_ids), "loans": len(loan_ids), "instalments": len(rows),
            "loans_in_arrears": overdue_loans}


def main() -> None:
    from backend.cli import migrate
    from backend.core.config import ROOT, get_settings, load_rules
    from backend.db import make_engine, make_sessionmaker
    from backend.services.outreach.planner import plan_day

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 12, 7))
    parser.add_argument("--url", help="an empty database (default: a new SQLite file in var/bench)")
    args = parser.parse_args()
    url = args.url
    if not url:
        path = ROOT / "var" / "bench" / f"outreach-{args.loans}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        Path(path).unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    migrate(url)
    rules = load_rules(get_settings().business_rules_path)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        started = time.perf_counter()
        book = generate_book(db, args.loans, args.day)
        print(f"generated {book} in {time.perf_counter() - started:.1f}s")
        for label, hour in (("first run", 7), ("hourly re-run", 8)):
            started = time.perf_counter()
            result = plan_day(db, rules, args.day, datetime.combine(args.day, datetime.min.time(), SHANGHAI)
                              + timedelta(hours=hour))
            print(f"plan_day {label}: {result['inserted']} notices {result['by_kind']} "
                  f"in {time.perf_counter() - started:.2f}s")
    engine.dispose()


if __name__ == "__main__":
    main()
