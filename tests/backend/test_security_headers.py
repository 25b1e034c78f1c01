"""The backend's part of the production profile (README "Security and privacy"), without a stack:
security headers on every response (CSP the console and web chat pages keep to), no CORS, the
console cookie Secure in production, and no production start with a published or missing secret.
The same points against the real processes: tests/e2e/test_production_profile.py."""
from __future__ import annotations

import base64
import os
import re

import pytest
from fastapi.testclient import TestClient

from backend.cli import migrate
from backend.core.config import PUBLISHED_DEV_SECRETS, InsecureConfiguration, Settings
from backend.main import create_app
from bot.settings import MUST_BE_EMPTY_IN_PRODUCTION, SECRET_NAME, published_values

FOREIGN_ORIGIN = "https://attacker.example"
PAGES = ("/chat", "/console/login", "/console", "/health", "/static/chat.js", "/static/console.js")


def secret_aliases() -> list[str]:
    return sorted(f.alias for f in Settings.model_fields.values() if f.alias and SECRET_NAME.search(f.alias))


def fresh_secrets() -> dict[str, str]:
    """A random value for every backend secret (urlsafe base64 of 32 bytes: a valid Fernet key too)."""
    def key() -> str:
        return base64.urlsafe_b64encode(os.urandom(32)).decode()

    out = {alias: key() for alias in secret_aliases()}
    out["BACKEND_API_KEYS"] = f"actions:{key()},scheduler:{key()}"
    out["TWILIO_AUTH_TOKEN"] = ""
    for alias in MUST_BE_EMPTY_IN_PRODUCTION:  # CONSOLE_DEMO_PASSWORD: no demo accounts in production
        out[alias] = ""
    return out


@pytest.fixture(scope="module")
def db_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('headers') / 'loan.db'}"
    migrate(url)
    return url


def make_client(db_url: str, **settings) -> TestClient:
    return TestClient(create_app(Settings(DATABASE_URL=db_url, RASA_PUBLIC_URL="http://127.0.0.1:5005", **settings)))


@pytest.fixture(scope="module")
def dev(db_url):
    with make_client(db_url, APP_ENV="development", CONSOLE_COOKIE_SECURE=False) as c:
        yield c


@pytest.fixture(scope="module")
def prod(db_url):
    with make_client(db_url, APP_ENV="production", CONSOLE_COOKIE_SECURE=False, **fresh_secrets()) as c:
        yield c


# --------------------------------------------------------------------------- headers

@pytest.mark.parametrize("path", PAGES)
def test_security_headers_on_every_page(dev, path):
    r = dev.get(path, follow_redirects=False)
    assert r.status_code < 500
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'self'"
    # Development allows eval for the browser tests (Playwright); production: test_production_headers.
    assert csp["script-src"] == "'self' 'unsafe-eval'" and csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    # The web chat's socket.io connection to Rasa (polling and websocket), nothing else.
    assert csp["connect-src"] == "'self' http://127.0.0.1:5005 ws://127.0.0.1:5005"
    assert "strict-transport-security" not in r.headers  # development: plain http


@pytest.mark.parametrize("path", PAGES)
def test_production_headers(prod, path):
    r = prod.get(path, follow_redirects=False)
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert "unsafe" not in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["strict-transport-security"].startswith("max-age=")


def test_page_scripts_never_eval():
    """What lets production's script-src 'self' go without 'unsafe-eval' (vendored libraries too)."""
    from pathlib import Path

    static = Path(__file__).resolve().parents[2] / "backend" / "static"
    for js in sorted(static.rglob("*.js")):
        code = js.read_text(encoding="utf-8", errors="replace")
        assert not re.search(r"(?<![\w.$])eval\(|new Function\(|set(?:Timeout|Interval)\(\s*[\"'`]", code), js


def test_headers_on_errors_and_api_responses_too(dev):
    for r in (dev.get("/api/v1/customers/1"), dev.get("/no-such-page")):
        assert r.status_code in (401, 403, 404)
        assert r.headers["x-frame-options"] == "DENY" and "content-security-policy" in r.headers


def test_pages_have_no_inline_code_the_policy_would_block(dev):
    """script-src/style-src 'self': no inline <script>, <style>, style= or on*= in the pages."""
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "backend" / "templates"
    for page in sorted(templates.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", html), page
    chat = dev.get("/chat").text
    assert '<meta name="rasa-url" content="http://127.0.0.1:5005">' in chat


def test_https_rasa_url_allows_wss(db_url):
    with TestClient(create_app(Settings(DATABASE_URL=db_url, RASA_PUBLIC_URL="https://bot.example.com"))) as c:
        csp = c.get("/chat").headers["content-security-policy"]
    assert "connect-src 'self' https://bot.example.com wss://bot.example.com;" in csp


def test_api_docs_keep_working_but_cannot_be_framed(dev):
    r = dev.get("/docs")
    assert r.status_code == 200
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"


def test_no_cors_headers_for_another_origin(dev):
    preflight = {"Origin": FOREIGN_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-api-key"}
    for r in (dev.get("/health", headers={"Origin": FOREIGN_ORIGIN}),
              dev.options("/api/v1/customers/1", headers=preflight),
              dev.options("/webchat/login/start", headers=preflight)):
        assert not any(h.startswith("access-control-") for h in r.headers), r.headers


# --------------------------------------------------------------------------- the console cookie

def test_console_cookie_follows_the_setting_in_development(dev):
    cookie = dev.get("/console/login").headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie


def test_console_cookie_is_secure_in_production_whatever_the_setting(prod):
    r = prod.get("/console/login")
    assert re.search(r";\s*Secure", r.headers["set-cookie"])
    assert r.headers["strict-transport-security"].startswith("max-age=")


# --------------------------------------------------------------------------- refusing to start

def test_production_accepts_fresh_secrets():
    s = Settings(APP_ENV="production", **fresh_secrets())
    assert s.app_env == "production" and s.console_cookie_secure is True


@pytest.mark.parametrize("alias", secret_aliases())
def test_production_refuses_a_published_or_missing_secret(alias):
    good = fresh_secrets()
    published = set(PUBLISHED_DEV_SECRETS.get(alias, ())) | {published_values().get(alias, "")}
    published |= {str(f.default) for f in Settings.model_fields.values() if f.alias == alias}
    published.discard("")
    if alias in MUST_BE_EMPTY_IN_PRODUCTION:  # empty is the only accepted value
        Settings(APP_ENV="production", **{**good, alias: ""})
        for value in sorted(published) + [good["OTP_HASH_SECRET"]]:
            with pytest.raises(InsecureConfiguration, match=f"{alias} must be empty"):
                Settings(APP_ENV="production", **{**good, alias: value})
        return
    if not published:  # an optional secret (TWILIO_AUTH_TOKEN): empty is allowed, unless used
        Settings(APP_ENV="production", **{**good, alias: ""})
        if alias == "TWILIO_AUTH_TOKEN":
            with pytest.raises(InsecureConfiguration, match=alias):
                Settings(APP_ENV="production", SMS_PROVIDER="twilio", **{**good, alias: ""})
        return
    for value in sorted(published) + [""]:
        with pytest.raises(InsecureConfiguration) as refused:
            Settings(APP_ENV="production", **{**good, alias: value})
        message = str(refused.value)
        assert alias in message and "refusing to start" in message
        for other in good.values():
            assert not other or other not in message  # names, never values


def test_production_refuses_a_list_holding_one_published_key():
    good = fresh_secrets()
    keys = f"actions:{good['RASA_API_TOKEN'][:32]},scheduler:dev-scheduler-key"
    with pytest.raises(InsecureConfiguration, match="BACKEND_API_KEYS"):
        Settings(APP_ENV="production", **{**good, "BACKEND_API_KEYS": keys})


def test_unknown_profile_is_refused_not_read_as_development():
    with pytest.raises(InsecureConfiguration, match="not a profile"):
        Settings(APP_ENV="prod")


def test_development_runs_on_the_published_defaults():
    s = Settings(APP_ENV="development")
    assert s.app_env == "development" and s.console_cookie_secure is False
