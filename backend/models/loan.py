"""Loans, their instalment schedule and the payments made against them."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import AwareDateTime, Base, Money, Rate, StrEnum
from .customer import Customer
from .enums import InstalmentStatus, LoanStatus


class Loan(Base):
    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_no: Mapped[str] = mapped_column(String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    product: Mapped[str] = mapped_column(String(20))
    principal: Mapped[Decimal] = mapped_column(Money())
    annual_rate: Mapped[Decimal] = mapped_column(Rate())
    term_months: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    status: Mapped[LoanStatus] = mapped_column(
        StrEnum(LoanStatus, "loan_status"),
        default=LoanStatus.active,
    )
    settled_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), server_default=func.now())

    customer: Mapped[Customer] = relationship(back_populates="loans")
    instalments: Mapped[list["Instalment"]] = relationship(
        back_populates="loan", order_by="Instalment.seq", cascade="all, delete-orphan"
    )
    payments: Mapped[list["Payment"]] = relationship(
        back_populates="loan", order_by="Payment.paid_at", cascade="all, delete-orphan"
    )


class Instalment(Base):
    """One scheduled repayment. Paid amounts are kept per component so balances stay exact."""

    __tablename__ = "instalments"
    __table_args__ = (UniqueConstraint("loan_id", "seq", name="uq_instalment_loan_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    principal: Mapped[Decimal] = mapped_column(Money())
    interest: Mapped[Decimal] = mapped_column(Money())
    fee: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"))
    paid_principal: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"))
    paid_interest: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"))
    paid_fee: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"))
    # Penalty interest is accrued lazily; when a payment arrives the accrual up to that day is
    # booked here (penalty_charged) and accrual restarts from penalty_accrued_to.
    penalty_charged: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"))
    paid_penalty: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"))
    penalty_accrued_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[InstalmentStatus] = mapped_column(
        StrEnum(InstalmentStatus, "instalment_status"),
        default=InstalmentStatus.pending,
    )
    settled_on: Mapped[date | None] = mapped_column(Date)

    loan: Mapped[Loan] = relationship(back_populates="instalments")

    _ZERO_FIELDS = ("fee", "paid_principal", "paid_interest", "paid_fee", "penalty_charged", "paid_penalty")

    def __init__(self, **kw) -> None:
        # Column defaults apply only at INSERT; the ledger reads these before the first flush.
        for name in self._ZERO_FIELDS:
            kw.setdefault(name, Decimal("0.00"))
        kw.setdefault("status", InstalmentStatus.pending)
        super().__init__(**kw)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    paid_on: Mapped[date] = mapped_column(Date)
    paid_at: Mapped[datetime] = mapped_column(AwareDateTime())
    method: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(40), unique=True)

    loan: Mapped[Loan] = relationship(back_populates="payments")
