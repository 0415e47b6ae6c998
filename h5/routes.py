"""Mount the H5 pages and their static files on the app (called by backend.main)."""

from __future__ import annotations

from fastapi import FastAPI

from h5.pages import (
    activities,
    activities_staff,
    auth,
    home,
    notices,
    party,
    party_staff,
    points,
    points_staff,
    privacy,
    profile,
    wishes,
    wishes_staff,
)
from h5.render import STATIC_DIR, STATIC_PREFIX, CachedStaticFiles

PAGE_ROUTERS = (
    auth.router,
    home.router,
    profile.router,
    privacy.router,
    # Before wishes: its /h5/wishes/review would otherwise be taken for a wish id.
    wishes_staff.router,
    wishes.router,
    # Before activities: its /h5/activities/new would otherwise be taken for an activity id.
    activities_staff.router,
    activities.router,
    notices.router,
    points.router,
    points_staff.router,
    party.router,
    party_staff.router,
)


def mount(app: FastAPI) -> None:
    app.mount(STATIC_PREFIX, CachedStaticFiles(directory=STATIC_DIR), name="h5-static")
    for router in PAGE_ROUTERS:
        app.include_router(router)
