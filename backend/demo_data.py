"""A realistic, deterministic demo book: borrowers, identities, loans in every status, payments.

Payments are booked through the real ledger (apply_payment), so every figure in the demo data is
one the API would compute itself. Same seed and as-of date -> the same book.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from backend.core.clock import SHANGHAI
from backend.core.config import BusinessRules
from backend.models import Channel, ChannelIdentity, Customer, Instalment, Loan, LoanStatus, Payment

from .services.ledger import apply_payment, position, refresh_loan_status
from .services.money import add_months, amortize
from .services.segments import recompute_all

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红鹏辉建国文斌宇浩凯鑫婷雪琳晨阳欣怡子涵梓轩浩然思远佳俊雨桐一诺嘉豪晓东志强海燕春梅丹丹"
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "155", "158",
                   "159", "166", "177", "180", "181", "182", "185", "186", "187", "188", "189", "198", "199"]
REGIONS = ["110101", "110105", "310101", "310115", "440103", "440305", "330106", "320102", "510104",
           "420102", "610113", "370202", "350203", "430104", "410105", "500103", "120101", "210102"]
BANKS = ["工商银行", "建设银行", "农业银行", "中国银行", "招商银行", "交通银行", "邮储银行", "浦发银行"]
RATES = [Decimal("0.0720"), Decimal("0.0999"), Decimal("0.1200"), Decimal("0.1560"), Decimal("0.1800"), Decimal("0.2399")]
TERMS = [6, 12, 12, 24, 24, 36]
METHODS = ["auto_debit", "auto_debit", "bank_transfer", "wechat_pay", "alipay"]


def id_checksum(first17: str) -> str:
    """GB 11643-1999 check character (ISO 7064 MOD 11-2)."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights)) % 11]


@dataclass
class DemoBook:
    customers: int
    loans: int
    payments: int


class _Maker:
    def __init__(self, rng: random.Random, rules: BusinessRules, as_of: date) -> None:
        self.rng, self.rules, self.as_of = rng, rules, as_of
        self.phones: set[str] = set()
        self.loan_seq = 0
        self.payments = 0

    def name(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice([1, 2, 2])))

    def phone(self) -> str:
        while True:
            p = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if p not in self.phones:
                self.phones.add(p)
                return p

    def id_number(self) -> str:
        birth = date(1970, 1, 1) + timedelta(days=self.rng.randrange(365 * 33))
        first17 = f"{self.rng.choice(REGIONS)}{birth:%Y%m%d}{self.rng.randrange(1000):03d}"
        return first17 + id_checksum(first17)

    def customer(self, idx: int) -> Customer:
        c = Customer(
            name=self.name(), phone=self.phone(), id_number=self.id_number(),
            preferred_channel=self.rng.choices([Channel.wechat, Channel.sms, Channel.web], [5, 3, 2])[0],
            consent_reminders=self.rng.random() > 0.05, consent_marketing=self.rng.random() < 0.3,
            card_bank=self.rng.choice(BANKS), card_last4=f"{self.rng.randrange(10000):04d}",
        )
        return c

    def identities(self, c: Customer) -> list[ChannelIdentity]:
        out = [ChannelIdentity(channel=Channel.sms, external_id="+86" + c.phone, customer=c, verified=True),
               ChannelIdentity(channel=Channel.web, external_id=str(c.id), customer=c, verified=True)]
        if c.preferred_channel == Channel.wechat or self.rng.random() < 0.4:
            openid = "o" + "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") for _ in range(27))
            out.append(ChannelIdentity(channel=Channel.wechat, external_id=openid, customer=c, verified=True))
        return out

    def loan(self, c: Customer, scenario: str) -> Loan:
        rng = self.rng
        term = rng.choice(TERMS)
        principal = Decimal(rng.randrange(30, 2000) * 100)
        paid_before = term
        if scenario == "settled":
            start = add_months(self.as_of, -(term + rng.randrange(1, 18)))
        elif scenario == "overdue":
            dpd = rng.randrange(1, 91)
            paid_before = rng.randrange(0, max(1, term - 4))
            start = add_months(self.as_of - timedelta(days=dpd), -(paid_before + 1))
        elif scenario == "due_soon":
            start = add_months(self.as_of + timedelta(days=rng.randrange(0, 4)), -rng.randrange(1, term))
        else:  # current or restructured
            start = self.as_of - timedelta(days=rng.randrange(10, 30 * (term - 1)))
        self.loan_seq += 1
        loan = Loan(
            loan_no=f"LN{start:%Y%m%d}{self.loan_seq:05d}", customer=c, product=rng.choice(list(self.rules.products)),
            principal=principal, annual_rate=rng.choice(RATES), term_months=term, start_date=start,
            status=LoanStatus.active,
        )
        loan.instalments = [
            Instalment(seq=s.seq, due_date=s.due_date, principal=s.principal, interest=s.interest)
            for s in amortize(principal, loan.annual_rate, term, start)
        ]
        self._pay_history(loan, paid_before if scenario == "overdue" else term)
        if scenario == "restructured":
            loan.status = LoanStatus.restructured
        return loan

    def _pay_history(self, loan: Loan, last_paid_seq: int) -> None:
        """Book payments on (or, now and then, a few days after) each past due date up to last_paid_seq."""
        rng = self.rng
        for inst in list(loan.instalments):
            if inst.due_date >= self.as_of or inst.seq > last_paid_seq:
                break
            late = rng.choice([0] * 12 + [1, 2, 3, 5, 8, 12])
            paid_on = min(inst.due_date + timedelta(days=late), self.as_of - timedelta(days=1))
            amount = position(loan, self.rules, paid_on).rows[inst.seq - 1].total_due
            apply_payment(loan, self.rules, amount, paid_on)
            self.payments += 1
            loan.payments.append(Payment(
                amount=amount, paid_on=paid_on, paid_at=datetime.combine(paid_on, time(10, 30), SHANGHAI),
                method=rng.choice(METHODS), reference=f"PAY{loan.loan_no[2:]}{inst.seq:03d}",
            ))
        refresh_loan_status(loan, self.as_of)


SCENARIOS = (["current"] * 40 + ["due_soon"] * 12 + ["overdue"] * 25 + ["settled"] * 15 + ["restructured"] * 3)


def generate(db: Session, rules: BusinessRules, *, count: int = 240, seed: int = 20261122, as_of: date, now: datetime) -> DemoBook:
    rng = random.Random(seed)
    maker = _Maker(rng, rules, as_of)
    loans = 0
    for idx in range(count):
        c = maker.customer(idx)
        db.add(c)
        db.flush()
        db.add_all(maker.identities(c))
        for _ in range(2 if rng.random() < 0.2 else 1):
            db.add(maker.loan(c, rng.choice(SCENARIOS)))
            loans += 1
        if idx % 50 == 49:
            db.flush()
    db.flush()
    recompute_all(db, rules, as_of, now)
    return DemoBook(count, loans, maker.payments)
