"""Log scrubbing for every process (PIPL Art. 51: de-identification): no full phone, ID or card
number, no one-time code, and no record longer than MAX_CHARS characters reaches a log.

Standard library only: the backend (.venv-app) and the Rasa side (.venv-bot) both import it.

* ``scrub(text)``: mainland mobiles (13812345678, +86 138 1234 5678, 8613812345678) -> 138****5678;
  18- and 15-digit ID numbers and 16-19 digit card numbers -> ****1234; a 4-8 digit code after
  验证码 / 校验码 / 动态码 / code / otp -> ******.
* ``ScrubFilter``: a logging.Filter that rewrites a record in place (message with its arguments, the
  traceback text, the stack, string extras such as an access log's request line), scrubs it and
  truncates each part to MAX_CHARS. It never drops a record.
* ``install()``: puts the filter on the root logger and the servers' loggers (uvicorn, sanic, rasa,
  rasa_sdk, ...) and on every handler, including handlers created later (Handler.handle runs it),
  so records of loggers that do not propagate are scrubbed too; and scrubs uncaught exceptions
  printed by sys.excepthook. Idempotent.
* ``python -m bot.logscrub <module> [args]``: install, then run the module as __main__ (how
  bot/launch.py starts the Rasa server and the action server, which configure logging themselves).
"""
from __future__ import annotations

import logging
import re
import sys
import traceback

MAX_CHARS = 2000

# Loggers the servers log through (their own handlers, or propagate=False in some versions).
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "sanic", "sanic.root", "sanic.error",
                  "sanic.access", "sanic.server", "rasa", "rasa_sdk", "backend", "scheduler", "channels",
                  "actions", "apscheduler", "httpx", "twilio")

_D = r"[0-9０-９]"  # ASCII and full-width digits
_MOBILE = re.compile(
    rf"(?<![0-9０-９A-Za-z])(?:(?:\+|＋)?86[ -]?)?([1１][3-9３-９]{_D})[ -]?({_D}{{4}})[ -]?({_D}{{4}})(?![0-9０-９])")
_ID18 = re.compile(rf"(?<![0-9０-９A-Za-z]){_D}{{6}}[ -]?{_D}{{8}}[ -]?{_D}{{3}}[0-9０-９Xx](?![0-9０-９A-Za-z])")
_ID15 = re.compile(rf"(?<![0-9０-９A-Za-z]){_D}{{15}}(?![0-9０-９A-Za-z])")
_CARD = re.compile(rf"(?<![0-9０-９A-Za-z]){_D}{{4}}(?:[ -]?{_D}{{4}}){{2}}[ -]?{_D}{{4,7}}(?![0-9０-９])")
_CODE = re.compile(r"(验证码|校验码|动态码|(?i:\b(?:verification\s+)?code|\botp))"
                   r"([^0-9０-９\n]{0,12}?)[0-9０-９]{4,8}(?![0-9０-９])")


def _digits(text: str) -> str:
    return "".join(str(int(ch)) for ch in text if ch.isdigit())


def _last4(m: re.Match) -> str:
    compact = "".join(ch for ch in m.group() if ch.isalnum())
    return "****" + compact[-4:].upper()


def scrub(text: str) -> str:
    """Mask personal numbers and one-time codes in free text."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    text = _CODE.sub(lambda m: m.group(1) + m.group(2) + "******", text)
    text = _ID18.sub(_last4, text)
    text = _CARD.sub(_last4, text)
    text = _MOBILE.sub(lambda m: _digits(m.group(1))[:3] + "****" + _digits(m.group(3)), text)
    text = _ID15.sub(_last4, text)
    return text


def truncate(text: str, limit: int = MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f" …[{len(text) - limit} more characters cut by the log scrubber]"


def clean(text: str, limit: int = MAX_CHARS) -> str:
    """Truncate (first, so a 5 MB line is not scanned whole), then scrub."""
    if len(text) > limit:
        return scrub(text[:limit]) + f" …[{len(text) - limit} more characters cut by the log scrubber]"
    return scrub(text)


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "_scrubbed"}


class ScrubFilter(logging.Filter):
    """Rewrites a record in place: masked and at most MAX_CHARS per part. Never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_scrubbed", False):
            return True
        try:
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: keep what there is
                message = f"{record.msg} {record.args}"
            record.msg, record.args = clean(str(message)), None
            if record.exc_info and not record.exc_text:
                record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if record.exc_text:
                record.exc_text = clean(record.exc_text)
            if record.stack_info:
                record.stack_info = clean(record.stack_info)
            for key, value in list(vars(record).items()):
                if key not in _STANDARD and isinstance(value, str):
                    setattr(record, key, clean(value))
        finally:
            record._scrubbed = True
        return True


_FILTER = ScrubFilter()
_installed = False


def install(extra_loggers: tuple[str, ...] = ()) -> ScrubFilter:
    """Scrub every record this process logs, whichever logger and handler (see the module doc)."""
    global _installed
    for name in ("", *SERVER_LOGGERS, *extra_loggers):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    if not _installed:
        original_handle = logging.Handler.handle

        def handle(self, record):  # every handler, also those created after install()
            _FILTER.filter(record)
            return original_handle(self, record)

        logging.Handler.handle = handle
        logging.lastResort.addFilter(_FILTER)
        original_hook = sys.excepthook

        def excepthook(kind, value, tb):
            text = "".join(traceback.format_exception(kind, value, tb))
            try:
                sys.stderr.write(clean(text) + "\n")
            except Exception:
                original_hook(kind, value, tb)

        sys.excepthook = excepthook
        _installed = True
    return _FILTER


def run_module(argv: list[str]) -> None:
    """``python -m bot.logscrub rasa run ...``: install, then run ``rasa`` as __main__ with the rest."""
    import runpy

    if not argv:
        sys.exit("usage: python -m bot.logscrub <module> [args...]")
    install()
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_module(sys.argv[1:])
