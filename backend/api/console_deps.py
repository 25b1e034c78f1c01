"""Console dependencies: the signed-in staff session (cookie) and the CSRF check."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

import texts
from backend.api.deps import DB, Rules, Today
from backend.core.errors import AppError
from backend.models import StaffSession
from backend.services import staff

COOKIE = "console_session"


class NotSignedIn(AppError):
    def __init__(self) -> None:
        super().__init__(401, "not_signed_in", texts.text("errors.console.not_signed_in"),
                         "Sign in to the console first")


def current_session(request: Request, db: DB, rules: Rules, clock: Today) -> StaffSession:
    session = staff.session_for(db, rules, request.cookies.get(COOKIE), clock.now())
    # Commit the session touch (or the record of its expiry) now: no write lock is held while the
    # request waits on Rasa, whose actions may write to this database themselves (SQLite).
    db.commit()
    if session is None:
        raise NotSignedIn()
    return session


def csrf_checked(session: Annotated[StaffSession, Depends(current_session)],
                 x_csrf_token: Annotated[str | None, Header()] = None) -> StaffSession:
    staff.check_csrf(session, x_csrf_token)
    return session


Staff = Annotated[StaffSession, Depends(current_session)]
StaffWrite = Annotated[StaffSession, Depends(csrf_checked)]
