"""The message renderer the notice preview needs.

Rendering belongs to the bot (bot/render.py and its templates), which backend may not
import: the app (backend.main) installs the bot's renderer at start-up, so the API and the
H5 preview show exactly what the bot will send. (Not a dependency override: any entry in
`app.dependency_overrides` makes FastAPI re-resolve dependencies on every request.)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from backend.core.errors import ServiceUnavailable
from backend.notices.views import Renderer

_renderer: Renderer | None = None


def install_renderer(renderer: Renderer) -> None:
    global _renderer
    _renderer = renderer


def message_renderer() -> Renderer:
    if _renderer is None:
        raise ServiceUnavailable("消息预览暂不可用")
    return _renderer


MessageRenderer = Annotated[Renderer, Depends(message_renderer)]
