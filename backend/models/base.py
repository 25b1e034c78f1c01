"""Declarative base and the column types: exact decimals, timezone-aware datetimes, enums."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, DateTime, Enum, MetaData
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


# The business timezone (backend.core.clock.SHANGHAI): SQLite keeps wall times in it.
BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


class AwareDateTime(TypeDecorator):
    """A point in time, always handed back timezone-aware (in the business timezone).

    PostgreSQL stores ``timestamp with time zone`` (UTC inside) and returns aware values, converted
    here to the business timezone. SQLite has no timezone type: the value is stored as the wall time
    in the business timezone (as it always was, so existing files read the same) and read back with
    that timezone attached. A naive value written is taken as business time. Comparisons in queries
    go through the same conversion, so both databases order and filter alike.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        aware = value.replace(tzinfo=BUSINESS_TZ) if value.tzinfo is None else value.astimezone(BUSINESS_TZ)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=BUSINESS_TZ) if value.tzinfo is None else value.astimezone(BUSINESS_TZ)


def Money() -> ScaledDecimal:  # noqa: N802 - reads like a type
    return ScaledDecimal(2)


def Rate() -> ScaledDecimal:  # noqa: N802
    return ScaledDecimal(6)


def StrEnum(enum_cls, name: str) -> Enum:  # noqa: N802 - reads like a type
    """A Python enum stored as a checked VARCHAR (portable across SQLite and PostgreSQL)."""
    return Enum(enum_cls, name=name, native_enum=False, length=20, validate_strings=True)
