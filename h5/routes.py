"""Mount the H5 pages and their static files on the app (called by backend.main)."""

from __future__ import annotations

from fastapi import FastAPI

from h5.pages import activities, auth, home, notices, party, points, privacy, profile, wishes
from h5.render import STATIC_DIR, STATIC_PREFIX, CachedStaticFiles

PAGE_ROUTERS = (
    auth.router,
    home.router,
    profile.router,
    privacy.router,
    wishes.router,
    activities.router,
    notices.router,
    points.router,
    party.router,
)


def mount(app: FastAPI) -> None:
    app.mount(STATIC_PREFIX, CachedStaticFiles(directory=STATIC_DIR), name="h5-static")
    for router in PAGE_ROUTERS:
        app.include_router(router)
