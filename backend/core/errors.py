"""Errors the API returns: always a 4xx with a Chinese and an English message, never a trace."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import texts

log = logging.getLogger(__name__)


class AppError(Exception):
    def __init__(self, status: int, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.status = status
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


def not_found(what_zh: str, what_en: str) -> AppError:
    return AppError(404, "not_found", texts.text("errors.not_found", what=what_zh), f"{what_en} not found")


def _body(code: str, zh: str, en: str, **extra) -> dict:
    return {"error": {"code": code, "message_zh": zh, "message_en": en, **extra}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=_body(exc.code, exc.message_zh, exc.message_en))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422,
            content=_body("invalid_input", texts.text("errors.invalid_input"), "Invalid input", fields=fields),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {
            401: ("unauthorized", texts.text("errors.http.unauthorized"), "Unauthorized: missing or wrong API key"),
            404: ("not_found", texts.text("errors.http.not_found"), "Not found"),
            405: ("method_not_allowed", texts.text("errors.http.method_not_allowed"), "Method not allowed"),
        }
        code, zh, en = messages.get(exc.status_code, ("http_error", texts.text("errors.http.other"), str(exc.detail)))
        return JSONResponse(status_code=exc.status_code, content=_body(code, zh, en))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error: %s", type(exc).__name__)
        return JSONResponse(status_code=500, content=_body("internal_error", texts.text("errors.busy"),
                                                           "Internal error"))
