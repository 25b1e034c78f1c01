"""Staff accounts and console sign-in.

Passwords are hashed with argon2id (argon2-cffi's PasswordHasher defaults follow RFC 9106).
A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, so a
leaked table cannot be replayed. Each session carries its own CSRF token, sent back by the page in
a header (or a form field) on every state-changing request. Failed sign-ins are counted in a sliding
window (config/business.yml, ``console``): past the limit for a client address (any username) the
answer to that client is 429 whatever the password, and the attempt is still recorded. Failures on
a username from other addresses never lock its owner out (a stranger must not be able to keep staff
from signing in): past the limit each further attempt on that username is only slowed down,
doubling from ``login_slowdown_seconds`` up to ``login_slowdown_max_seconds``.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules
from backend.core.errors import AppError
from backend.models import LoginAttempt, StaffRole, StaffSession, StaffUser

from . import audit

_hasher = PasswordHasher()
# Verified against when the username does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
MIN_PASSWORD = 10


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(db: Session, username: str, display_name: str, role: str, password: str, now: datetime,
                actor: str) -> StaffUser:
    if len(password) < MIN_PASSWORD:
        raise AppError(422, "weak_password", texts.text("errors.staff.weak_password", length=MIN_PASSWORD),
                       f"Password needs {MIN_PASSWORD}+ characters")
    if db.scalar(select(StaffUser).where(StaffUser.username == username)) is not None:
        raise AppError(409, "exists", texts.text("errors.staff.exists"), "Username already exists")
    user = StaffUser(username=username, display_name=display_name, role=StaffRole(role),
                     password_hash=_hasher.hash(password), active=True, created_at=now)
    db.add(user)
    db.flush()
    audit.record(db, actor, "staff.created", "staff_user", user.id, username=username, role=role)
    return user


# Waits before checking a password on a username under attack (tests replace it).
_sleep = time.sleep


def _failures(db: Session, rules: BusinessRules, username: str, client: str, now: datetime) -> tuple[int, int]:
    """(failures from this client address, failures on this username from anywhere) in the window."""
    since = now - timedelta(minutes=rules.console.login_window_minutes)
    by_user = db.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.username == username, LoginAttempt.success.is_(False), LoginAttempt.at >= since))
    by_client = db.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.client == client, LoginAttempt.success.is_(False), LoginAttempt.at >= since))
    return by_client, by_user


def slowdown(rules: BusinessRules, user_failures: int) -> float:
    """Seconds to wait before checking a password on a username with this many recent failures."""
    c = rules.console
    excess = user_failures - c.login_max_failures
    if excess < 0:
        return 0.0
    return min(c.login_slowdown_max_seconds, c.login_slowdown_seconds * (2 ** min(excess, 16)))


def sign_in(db: Session, rules: BusinessRules, username: str, password: str, client: str,
            now: datetime) -> tuple[StaffUser, str]:
    """Check the password and open a session: (user, cookie token). Raises 401 or 429."""
    username = username.strip()[:50]
    by_client, by_user = _failures(db, rules, username, client, now)
    if by_client >= rules.console.login_max_failures:
        db.add(LoginAttempt(username=username, client=client, success=False, at=now))
        audit.record(db, username or "-", "staff.login_throttled", "staff_user", username or "-", client=client)
        raise AppError(429, "too_many_attempts",
                       texts.text("errors.staff.too_many_attempts", minutes=rules.console.login_window_minutes),
                       "Too many failed sign-ins; try again later")
    if delay := slowdown(rules, by_user):
        _sleep(delay)  # guessing on this username gets slow; its owner can still sign in
    user = db.scalar(select(StaffUser).where(StaffUser.username == username))
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None and user.active
    except (VerificationError, InvalidHashError):
        ok = False
    db.add(LoginAttempt(username=username, client=client, success=ok, at=now))
    if not ok:
        audit.record(db, username or "-", "staff.login_failed", "staff_user", user.id if user else "-", client=client)
        raise AppError(401, "bad_credentials", texts.text("errors.staff.bad_credentials"), "Wrong username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    token = secrets.token_urlsafe(32)
    db.add(StaffSession(token_hash=_token_hash(token), staff_id=user.id, csrf_token=secrets.token_urlsafe(32),
                        created_at=now, last_seen_at=now))
    audit.record(db, user.username, "staff.login", "staff_user", user.id, client=client)
    return user, token


def session_for(db: Session, rules: BusinessRules, token: str | None, now: datetime) -> StaffSession | None:
    """The live session for a cookie token, touched; None if unknown, ended, idle too long or too old."""
    if not token:
        return None
    session = db.scalar(select(StaffSession).where(StaffSession.token_hash == _token_hash(token)))
    if session is None or session.ended_at is not None or not session.staff.active:
        return None
    idle = now - session.last_seen_at
    age = now - session.created_at
    if idle > timedelta(minutes=rules.console.session_idle_minutes) or age > timedelta(hours=rules.console.session_max_hours):
        session.ended_at = now
        audit.record(db, session.staff.username, "staff.session_expired", "staff_user", session.staff_id)
        return None
    session.last_seen_at = now
    return session


def sign_out(db: Session, session: StaffSession, now: datetime) -> None:
    session.ended_at = now
    audit.record(db, session.staff.username, "staff.logout", "staff_user", session.staff_id)


def check_csrf(session: StaffSession, sent: str | None) -> None:
    if not sent or not secrets.compare_digest(sent, session.csrf_token):
        raise AppError(403, "csrf", texts.text("errors.staff.csrf"), "Missing or wrong CSRF token")


def staff_names(db: Session) -> list[tuple[str, str, str]]:
    """(username, display name, role) of active staff, for the reassign list."""
    rows = db.execute(select(StaffUser.username, StaffUser.display_name, StaffUser.role)
                      .where(StaffUser.active.is_(True)).order_by(StaffUser.username)).all()
    return [(u, d, r.value) for u, d, r in rows]
