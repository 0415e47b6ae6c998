"""Composition root: the API, the H5 pages and the WeChat callback in one ASGI app.

The only backend module that may import h5 or bot.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

import bot.callback
import bot.menu
import bot.render
import bot.runner
import h5.routes
from backend.accounts.deps import document_cross_origin
from backend.accounts.router import router as accounts_router
from backend.activities.router import router as activities_router
from backend.core import db, metrics
from backend.core.config import Settings, get_settings
from backend.core.errors import (
    DomainError,
    ServiceUnavailable,
    document_transport_errors,
    install_error_handlers,
)
from backend.core.logging import configure_logging, request_id_var
from backend.core.ratelimit import limit_ip
from backend.core.redis import close_kv, get_kv, init_kv
from backend.core.text import QueryTextCheck
from backend.notices.deps import install_renderer
from backend.notices.router import router as notices_router
from backend.orgs.router import router as orgs_router
from backend.party.router import router as party_router
from backend.points.router import router as points_router
from backend.privacy.router import router as privacy_router
from backend.wishes.router import router as wishes_router

log = logging.getLogger("linli.http")


class RequestContextMiddleware:
    """Request id, access log, metrics and the per-IP rate limit (pure ASGI: cheap)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = incoming or uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        path = scope["path"]
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", []).append(
                    (b"x-request-id", request_id.encode("latin-1"))
                )
            await send(message)

        try:
            if path.startswith("/api/"):
                client = scope.get("client") or ("-", 0)
                try:
                    await limit_ip(client[0])
                except DomainError as exc:
                    response = JSONResponse(exc.body(), exc.status_code, headers=exc.headers)
                    await response(scope, receive, send_wrapper)
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_name = getattr(route, "path", None) or "unmatched"
            metrics.REQUESTS.labels(scope["method"], route_name, status_holder["status"]).inc()
            metrics.LATENCY.labels(scope["method"], route_name).observe(elapsed)
            if path not in ("/healthz", "/metrics"):
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status_holder["status"],
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
            request_id_var.reset(token)


SWAGGER_UI_DIR = Path(__file__).resolve().parent / "static" / "vendor" / "swagger-ui"
DOCS_ASSETS = "/docs/assets"


def create_app(settings: Settings | None = None, *, with_bot: bool = False) -> FastAPI:
    """Build the app. `with_bot` runs the outbox relay and scheduler in this process."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        init_kv(settings)
        await db.init_db(settings)
        runner = bot.runner.BotRunner(settings) if with_bot else None
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            await db.close_db()
            await close_kv()

    app = FastAPI(
        title="邻里 Linli API",
        version="1.0",
        description="石门二路街道社区服务：在职党员报到、微心愿、活动报名、积分兑换、通知。",
        lifespan=lifespan,
        # /docs is served below from vendored files; FastAPI's own pages load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # Inside the request context, so a refused query is logged with its request id.
    app.add_middleware(QueryTextCheck)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "数据库不可用"}})
    async def readyz() -> dict[str, str]:
        # Only the database decides readiness. Without Redis every request still works (limits
        # and the booking gate fall back to the database), so a Redis blip must not pull every
        # replica out of the load balancer at once; it shows in the body and in a metric.
        try:
            await db.ping()
        except Exception as exc:
            raise ServiceUnavailable("数据库不可用") from exc
        redis = "off"
        if get_settings().redis_url:
            try:
                await get_kv().ping()
                redis = "ok"
            except Exception:
                redis = "down"
            metrics.REDIS_UP.set(redis == "ok")
        return {"status": "ok", "redis": redis}

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    # Swagger UI from backend/static/vendor (README.txt there): /docs works without internet.
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="邻里 Linli API 文档",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse("/h5/")

    # Routes are matched in order, one pattern at a time: the booking rush's routes go first.
    for router in (
        activities_router,
        accounts_router,
        privacy_router,
        wishes_router,
        points_router,
        party_router,
        notices_router,
        orgs_router,
    ):
        app.include_router(router, prefix="/api/v1")
    base_openapi = app.openapi
    app.openapi = lambda: document_cross_origin(base_openapi())
    app.include_router(bot.callback.router)
    install_renderer(bot.render.preview)
    h5.routes.mount(app)
    document_transport_errors(app)
    return app


def create_embedded_app() -> FastAPI:
    """`linli run`: app and bot in one process (the SQLite default needs a single writer)."""
    return create_app(with_bot=True)


async def run_bot_forever(settings: Settings | None = None) -> None:
    """`linli bot`: the outbox relay and scheduler as a process of its own."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    if settings.bot_metrics_address:
        metrics.serve(settings.bot_metrics_address)
    init_kv(settings)
    await db.init_db(settings)
    try:
        await bot.runner.BotRunner(settings).run_forever()
    finally:
        await db.close_db()
        await close_kv()


async def create_wechat_menu(path: str | None = None, settings: Settings | None = None) -> dict:
    """`linli wechat menu`: the official account's custom menu from the file in the repo."""
    settings = settings or get_settings()
    init_kv(settings)
    try:
        return await bot.menu.create_menu(settings, Path(path) if path else bot.menu.MENU_FILE)
    finally:
        await close_kv()
