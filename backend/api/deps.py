"""FastAPI dependencies: settings, rules, clock, a transactional session, the API key check and the Rasa client."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session

from backend.core.clock import Clock
from backend.core.config import BusinessRules, Settings
from backend.services.rasa_api import RasaClient


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_rules(request: Request) -> BusinessRules:
    return request.app.state.rules


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def get_rasa(request: Request) -> RasaClient:
    return request.app.state.rasa


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed on success, rolled back on any error (no partial writes).
    The session carries the app's rules and clock for services called without them (services.notices)."""
    session = request.app.state.sessionmaker()
    session.info.update(rules=request.app.state.rules, clock=request.app.state.clock)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def require_api_key(
    request: Request, x_api_key: Annotated[str | None, Header()] = None
) -> str:
    """Service-to-service authentication; returns the caller's name for the audit log."""
    keys: dict[str, str] = request.app.state.settings.api_keys()
    if x_api_key:
        for key, name in keys.items():
            if secrets.compare_digest(key, x_api_key):
                return name
    raise HTTPException(status_code=401)


# scope="function": commit (or roll back) before the response is sent, so a 2xx means the data is stored.
DB = Annotated[Session, Depends(get_db, scope="function")]
Rules = Annotated[BusinessRules, Depends(get_rules)]
Today = Annotated[Clock, Depends(get_clock)]
Caller = Annotated[str, Depends(require_api_key)]
Rasa = Annotated[RasaClient, Depends(get_rasa)]
