"""Every refusal becomes JSON with a stable `code` and a message in Chinese and English, in one place."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.limits import BODY_MARGIN, BodyLimit
from states import (
    GuardFailed,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    NotFound,
    UnknownTrigger,
    VersionConflict,
    WorkflowError,
)
from workflow.accounts import AccountLocked, LoginFailed

STATUS: list[tuple[type[WorkflowError], int]] = [
    (NotFound, 404),  # also OutOfScope: never reveal that a record outside the scope exists
    (UnknownTrigger, 404),
    (NotAllowed, 403),
    (VersionConflict, 409),
    (InvalidTransition, 409),
    (GuardFailed, 422),
    (InvalidInput, 422),
    (LoginFailed, 401),
    (AccountLocked, 423),
]


def split(message: str) -> tuple[str, str]:
    zh, sep, en = message.partition(" / ")
    return (zh, en) if sep else (message, message)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    zh, en = split(message)
    return {"code": code, "message": message, "message_zh": zh, "message_en": en, **extra}


def status_of(exc: WorkflowError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


def install(app: FastAPI) -> None:
    app.add_middleware(BodyLimit, max_bytes=app.state.context.settings.upload_max_bytes + BODY_MARGIN)

    @app.exception_handler(WorkflowError)
    async def workflow_error(request: Request, exc: WorkflowError) -> JSONResponse:
        extra = {"guard": exc.guard} if isinstance(exc, GuardFailed) else {}
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, LoginFailed) else None
        return JSONResponse(error_body(exc.code, str(exc), **extra), status_code=status_of(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"] if p != "body")
            problems.append(f"{where}: {e['msg']}")
        text = "; ".join(problems)
        return JSONResponse(
            error_body("invalid_input", f"提交的内容有误：{text} / the request is not valid: {text}"), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "not_signed_in", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        messages = {
            401: "请先登录 / please sign in",
            413: "请求内容过大 / the request is too large",
            404: "找不到该页面或记录 / not found",
            405: "不支持该操作 / method not allowed",
        }
        message = messages.get(exc.status_code, f"{exc.detail} / {exc.detail}")
        return JSONResponse(
            error_body(codes.get(exc.status_code, "http_error"), message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(sa.exc.DataError)
    @app.exception_handler(OverflowError)
    async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # an id or number beyond what the database stores (SQLite raises OverflowError, PostgreSQL DataError)
        return JSONResponse(
            error_body("invalid_input", "提交的数值超出范围 / a value in the request is out of range"), status_code=422
        )

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    # the same errors straight from the driver, where a hot path uses the raw DBAPI connection
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    @app.exception_handler(sqlite3.OperationalError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body(
                "database_unavailable", "数据库暂时不可用，请稍后重试 / the database is unavailable; retry shortly"
            ),
            status_code=503,
            headers={"Retry-After": "5"},
        )
