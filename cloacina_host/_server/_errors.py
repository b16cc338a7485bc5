"""Cloacina's errors as HTTP responses: the command line's message, its exit status, and a fitting status code.

| error                                                      | HTTP |
|------------------------------------------------------------|------|
| a malformed request or a bad value (``UsageError``...)      | 400  |
| no valid API key                                           | 401  |
| the key's role does not allow the route, or no rule        | 403  |
| not found in the key's tenant (``NotFoundError``...)       | 404  |
| refused by the object's state (registered with other bytes, still running, ended) | 409 |
| an upload over the archive size limit                      | 413  |
| a body or a typed input that does not fit (field named)    | 422  |
| the database is unreachable (``StorageError``)             | 503  |
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloacina_workflow import CloacinaError, InputError

from .._engine._operate import ExecutionEndedError, ExecutionRunningError
from .._errors import EXIT_INFRASTRUCTURE, EXIT_NOT_FOUND, EXIT_USER_ERROR, NotFoundError, StorageError
from .._registry import RegistryError
from ._auth import AuthError
from ._models import ErrorResponse

__all__ = ["ERROR_RESPONSES", "ApiError", "install_handlers", "status_of"]


class ApiError(Exception):
    """A refusal the server itself decides (an oversized upload, a body that is not an archive)."""

    def __init__(self, status: int, message: str, *, exit_status: int = EXIT_USER_ERROR) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.exit_status = exit_status


#: documented in the OpenAPI document for every route
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Bad request",
        401: "No valid API key",
        403: "Not allowed for this key's role",
        404: "Not found in the key's tenant",
        409: "Refused by the object's state",
        422: "A field does not fit",
    }.items()
}


def status_of(exc: CloacinaError) -> int:
    if isinstance(exc, InputError):
        return 422
    if isinstance(exc, NotFoundError) or getattr(exc, "exit_status", None) == EXIT_NOT_FOUND:
        return 404
    if isinstance(exc, (RegistryError, ExecutionEndedError, ExecutionRunningError)):
        return 409
    if isinstance(exc, StorageError):
        return 503
    return 400


def _response(status: int, message: str, exit_status: int, problems: list[str] | None = None) -> JSONResponse:
    body = ErrorResponse(error=message, exit_status=exit_status, problems=problems or [])
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] or [str(p) for p in loc]
    return ".".join(parts) or "body"


def install_handlers(app: FastAPI) -> None:
    """Every error leaves as an ``ErrorResponse``; no traceback reaches a client."""

    @app.exception_handler(CloacinaError)
    async def cloacina_error(_request: Request, exc: CloacinaError) -> JSONResponse:
        problems = list(exc.problems) if isinstance(exc, InputError) else []
        exit_status = int(getattr(exc, "exit_status", EXIT_USER_ERROR))
        return _response(status_of(exc), str(exc), exit_status, problems)

    @app.exception_handler(AuthError)
    async def auth_error(_request: Request, exc: AuthError) -> JSONResponse:
        return _response(exc.status, exc.message, EXIT_USER_ERROR)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _response(exc.status, exc.message, exc.exit_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_field(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        message = "The request does not fit: " + "; ".join(problems)
        return _response(422, message, EXIT_USER_ERROR, problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        exit_status = EXIT_NOT_FOUND if exc.status_code == 404 else EXIT_USER_ERROR
        if exc.status_code >= 500:
            exit_status = EXIT_INFRASTRUCTURE
        return _response(exc.status_code, str(exc.detail), exit_status)
