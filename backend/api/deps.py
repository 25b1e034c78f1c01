"""FastAPI dependencies: settings, rules, clock, a transactional session, the API key and scope checks,
the Rasa client, bounded ids and the route class of the service API (aware date-times)."""
from __future__ import annotations

import functools
import inspect
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Header, HTTPException, Path, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

import texts
from backend.core.clock import Clock
from backend.core.config import API_SCOPES, BusinessRules, Settings
from backend.core.errors import AppError
from backend.services.rasa_api import RasaClient


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_rules(request: Request) -> BusinessRules:
    return request.app.state.rules


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def get_rasa(request: Request) -> RasaClient:
    return request.app.state.rasa


class OutOfRange(AppError):
    def __init__(self) -> None:
        super().__init__(422, "invalid_input", texts.text("errors.invalid_input"),
                         "Invalid input: a value is out of range")


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed on success, rolled back on any error (no partial writes).
    The session carries the app's rules and clock for services called without them (services.notices)."""
    session = request.app.state.sessionmaker()
    session.info.update(rules=request.app.state.rules, clock=request.app.state.clock)
    try:
        yield session
        session.commit()
    except (DataError, OverflowError) as exc:
        # A value the database cannot hold (a number beyond its integers, e.g. an id above 2**31-1 on
        # PostgreSQL or 2**63-1 on SQLite, in a body): the caller's input, not a server error.
        session.rollback()
        raise OutOfRange() from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _key_holder(request: Request, x_api_key: str | None) -> tuple[str, frozenset[str]]:
    """The caller's name and scopes for a valid key; 401 for a missing or unknown one."""
    if x_api_key:
        for key, holder in request.app.state.settings.api_key_scopes().items():
            if secrets.compare_digest(key.encode(), x_api_key.encode()):
                return holder
    raise HTTPException(status_code=401)


def require_api_key(
    request: Request, x_api_key: Annotated[str | None, Header()] = None
) -> str:
    """Service-to-service authentication only; returns the caller's name for the audit log. A route
    needs a scope too (``scoped``): tests/backend/test_api_scopes.py fails a route without one."""
    return _key_holder(request, x_api_key)[0]


class ScopeMissing(AppError):
    def __init__(self, scope: str) -> None:
        super().__init__(403, "insufficient_scope", texts.text("errors.http.insufficient_scope"),
                         f"This API key may not call this route (scope {scope})")


def scoped(scope: str) -> Callable[..., str]:
    """A dependency: a valid X-API-Key (else 401) whose caller holds ``scope`` (else 403,
    backend.core.config.API_KEY_PROFILES); returns the caller's name for the audit log."""
    if scope not in API_SCOPES:
        raise ValueError(f"unknown API scope {scope!r}")

    def check(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> str:
        name, scopes = _key_holder(request, x_api_key)
        if scope not in scopes:
            raise ScopeMissing(scope)
        return name

    check.scope = scope  # type: ignore[attr-defined]  # read by the scope walk test
    check.__name__ = f"scope_{scope.replace(':', '_').replace('-', '_')}"
    return check


def Scoped(scope: str) -> Any:  # noqa: N802 - used as a type: ``caller: Scoped("accounts:read")``
    """The caller's name, for a key holding ``scope``."""
    return Annotated[str, Depends(scoped(scope))]


# Database ids are 32-bit on PostgreSQL: a larger one is a 422, not a database error.
MAX_ID = 2**31 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


# --------------------------------------------------------------------------- aware date-times

def _aware(value: Any, tz: ZoneInfo) -> Any:
    """``value`` with every naive datetime in it given the business timezone (SQLite keeps date-times
    without their offset: they were written in business time)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=tz) if value.tzinfo is None else value
    if isinstance(value, BaseModel):
        changed = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _aware(old, tz)
            if new is not old:
                changed[name] = new
        return value.model_copy(update=changed) if changed else value
    if isinstance(value, list):
        new_list = [_aware(v, tz) for v in value]
        return new_list if any(n is not o for n, o in zip(new_list, value)) else value
    if isinstance(value, dict):
        new_dict = {k: _aware(v, tz) for k, v in value.items()}
        return new_dict if any(new_dict[k] is not value[k] for k in value) else value
    return value


_REQUEST_PARAM = "_aware_request"


def _with_aware_datetimes(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint, its result's naive date-times made aware in the business timezone (so every
    response keeps the ``date-time`` format its schema declares)."""
    signature = inspect.signature(endpoint, eval_str=True)
    # FastAPI hands a route one Request parameter: the endpoint's own if it has one, else ours.
    own = next((p.name for p in signature.parameters.values() if p.annotation is Request), None)
    if own is None:
        extra = inspect.Parameter(_REQUEST_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        signature = signature.replace(parameters=[*signature.parameters.values(), extra])

    def tz(kwargs: dict) -> ZoneInfo:
        request = kwargs[own] if own else kwargs.pop(_REQUEST_PARAM)
        return ZoneInfo(request.app.state.rules.timezone)

    if inspect.iscoroutinefunction(endpoint):
        @functools.wraps(endpoint)
        async def wrapper(*args, **kwargs):
            zone = tz(kwargs)
            return _aware(await endpoint(*args, **kwargs), zone)
    else:
        @functools.wraps(endpoint)
        def wrapper(*args, **kwargs):
            zone = tz(kwargs)
            return _aware(endpoint(*args, **kwargs), zone)
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    return wrapper


class ApiRoute(APIRoute):
    """The route class of the service API (/api/v1): responses carry aware date-times."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _with_aware_datetimes(endpoint), **kwargs)


# scope="function": commit (or roll back) before the response is sent, so a 2xx means the data is stored.
DB = Annotated[Session, Depends(get_db, scope="function")]
Rules = Annotated[BusinessRules, Depends(get_rules)]
Today = Annotated[Clock, Depends(get_clock)]
Caller = Annotated[str, Depends(require_api_key)]
Rasa = Annotated[RasaClient, Depends(get_rasa)]
