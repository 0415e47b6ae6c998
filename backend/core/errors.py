"""Domain errors with stable codes, and the one error envelope every failure uses."""

from __future__ import annotations

import logging
from typing import Any

from asyncpg.exceptions import QueryCanceledError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("linli.errors")


class DomainError(Exception):
    """A business-rule failure. Routers map it to HTTP; pages show `message`."""

    status_code = 409
    code = "conflict"
    message = "操作无法完成"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.fields = fields
        self.headers = headers
        super().__init__(f"{self.code}: {self.message}")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields is not None:
            error["fields"] = self.fields
        return {"error": error}


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"
    message = "请先登录"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
    message = "没有权限进行此操作"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    message = "内容不存在或已删除"


class Invalid(DomainError):
    status_code = 422
    code = "invalid"
    message = "提交的内容有误，请检查后再试"


class Conflict(DomainError):
    status_code = 409


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"
    message = "操作太频繁，请稍后再试"


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "unavailable"
    message = "服务暂时不可用，请稍后再试"


def error_response(status_code: int, body: dict[str, Any], headers=None) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=body, headers=headers)


def error_schema(*codes: str) -> dict[str, Any]:
    """OpenAPI description of the envelope for a set of codes (for route `responses=`)."""
    return {
        "model": ErrorEnvelope,
        "description": "错误：" + ", ".join(codes),
    }


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Route `responses=` for the error statuses it can answer with (and 503 `unavailable`,
    which any route answers when the database cancels a statement that ran too long)."""
    described = {
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        422: "invalid",
        429: "rate_limited",
        503: "unavailable",
    }
    return {s: error_schema(described.get(s, "error")) for s in (*statuses, 503)}


def document_transport_errors(app: FastAPI) -> None:
    """Add to the OpenAPI document the refusals that happen before a route's own code runs.

    A body that cannot be read at all (JSON that is not UTF-8, a broken multipart form) is
    refused by FastAPI before validation, as 400 `bad_request`; a state-changing request
    signed in with the H5 session cookie but sent from another site is refused by
    `backend.accounts.deps` as 403 `cross_origin`.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        cookie_schemes = {
            name
            for name, scheme in schema.get("components", {}).get("securitySchemes", {}).items()
            if scheme.get("in") == "cookie"
        }
        for methods in schema["paths"].values():
            for method, operation in methods.items():
                answers = operation.setdefault("responses", {})
                envelope = answers.get("422", {}).get("content")
                if "requestBody" in operation:
                    answers.setdefault("400", _documented("bad_request", envelope))
                signed_by_cookie = any(
                    cookie_schemes & set(requirement)
                    for requirement in operation.get("security", [])
                )
                if signed_by_cookie and method in ("post", "put", "patch", "delete"):
                    forbidden = answers.setdefault("403", _documented("cross_origin", envelope))
                    if "cross_origin" not in forbidden.get("description", ""):
                        forbidden["description"] = (
                            forbidden.get("description", "") + ", cross_origin"
                        )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _documented(code: str, content: dict[str, Any] | None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": f"错误：{code}"}
    if content is not None:
        answer["content"] = content
    return answer


class DatabaseBusy(ServiceUnavailable):
    message = "系统繁忙，请稍后再试"


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is PostgreSQL cancelling a statement that ran past
    `statement_timeout`; Tortoise passes asyncpg's error through, sometimes wrapped."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, QueryCanceledError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_HTTP_CODES = {
    400: ("bad_request", "请求格式不正确"),
    401: ("unauthenticated", "请先登录"),
    403: ("forbidden", "没有权限进行此操作"),
    404: ("not_found", "内容不存在或已删除"),
    405: ("method_not_allowed", "不支持的请求方式"),
    413: ("too_large", "提交的内容太大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
}


def _field_errors(exc: RequestValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        # Only the first part says where the input was; a field may itself be named "query".
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        key = ".".join(loc) or "body"
        if err.get("type") == "json_invalid":
            fields["body"] = "JSON 格式不正确"
        else:
            fields.setdefault(key, _zh_message(err))
    return fields


def _zh_message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "必填"
    if kind.endswith("_parsing") or kind.endswith("_type"):
        return "格式不正确"
    if kind == "string_too_long":
        return f"不能超过 {ctx.get('max_length')} 个字"
    if kind == "string_too_short":
        return f"至少 {ctx.get('min_length')} 个字"
    if kind in ("greater_than_equal", "greater_than"):
        return f"不能小于 {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"不能大于 {ctx.get('le', ctx.get('lt'))}"
    if kind == "extra_forbidden":
        return "不支持的字段"
    if kind in ("literal_error", "enum"):
        return "取值不在允许范围内"
    if kind in ("text_control", "moment_window", "date_window"):
        # backend.core.text raises these with a Chinese message of its own.
        return str(err.get("msg", "内容不合法"))
    return "内容不合法"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc.status_code, exc.body(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc)
        message = "请求内容不是合法的 JSON" if fields.get("body") == "JSON 格式不正确" else None
        return error_response(422, Invalid(message, fields=fields).body())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_CODES.get(exc.status_code, ("error", "请求失败"))
        return error_response(
            exc.status_code, {"error": {"code": code, "message": message}}, exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        if is_statement_timeout(exc):
            log.warning("database statement timed out", extra={"request_id": request_id})
            busy = DatabaseBusy()
            return error_response(busy.status_code, busy.body(), {"Retry-After": "5"})
        log.exception("unhandled error", extra={"request_id": request_id})
        return error_response(
            500,
            {
                "error": {
                    "code": "internal",
                    "message": "服务器开小差了，请稍后再试",
                    "request_id": request_id,
                }
            },
        )
