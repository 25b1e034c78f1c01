"""Declarative base and the exact-decimal column type."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Enum, MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ScaledDecimal(TypeDecorator):
    """A Decimal stored as a scaled integer (cents for money).

    SQLite has no exact decimal type (SQLAlchemy's Numeric goes through float there), so
    money is stored as an integer number of the smallest unit: exact on every database.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self._factor = Decimal(10) ** scale

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        scaled = Decimal(value) * self._factor
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(scaled)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return (Decimal(int(value)) / self._factor).quantize(Decimal(1) / self._factor)


def Money() -> ScaledDecimal:  # noqa: N802 - reads like a type
    return ScaledDecimal(2)


def Rate() -> ScaledDecimal:  # noqa: N802
    return ScaledDecimal(6)


def StrEnum(enum_cls, name: str) -> Enum:  # noqa: N802 - reads like a type
    """A Python enum stored as a checked VARCHAR (portable across SQLite and PostgreSQL)."""
    return Enum(enum_cls, name=name, native_enum=False, length=20, validate_strings=True)
