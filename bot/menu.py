"""The official account's custom menu, created from a JSON file in the repository.

`{h5}` in a URL becomes the public base URL of the H5 pages. The file is checked against
WeChat's rules (at most 3 buttons of at most 5 entries, name lengths) and every click key
must be one the account answers (bot.replies.MENU_KEYS) before anything is sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backend.core.config import Settings
from bot.channels import ChannelError, Channels
from bot.replies import MENU_KEYS

# In the package, so an installed bot (the Docker image) has it too.
MENU_FILE = Path(__file__).resolve().parent / "wechat-menu.json"
MAX_BUTTONS = 3
MAX_SUB_BUTTONS = 5
# WeChat counts bytes: 4 Chinese characters for a top button, 20 for an entry.
TOP_NAME_BYTES = 16
SUB_NAME_BYTES = 60


class MenuError(ValueError):
    """The menu file is not a menu WeChat would accept (message in Chinese)."""


def _check_entry(entry: Any, *, top: bool, where: str) -> None:
    if not isinstance(entry, dict):
        raise MenuError(f"{where} 不是对象")
    name = entry.get("name")
    limit = TOP_NAME_BYTES if top else SUB_NAME_BYTES
    if not isinstance(name, str) or not name or len(name.encode()) > limit:
        raise MenuError(f"{where} 的名称须为 1–{limit} 字节")
    subs = entry.get("sub_button")
    if top and subs is not None:
        if not isinstance(subs, list) or not 1 <= len(subs) <= MAX_SUB_BUTTONS:
            raise MenuError(f"{where} 的子菜单须有 1–{MAX_SUB_BUTTONS} 项")
        for n, sub in enumerate(subs, 1):
            _check_entry(sub, top=False, where=f"{where} 第 {n} 项")
        return
    kind = entry.get("type")
    if kind == "click":
        if entry.get("key") not in MENU_KEYS:
            raise MenuError(f"{where} 的 key 须为 {'、'.join(MENU_KEYS)} 之一")
    elif kind == "view":
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise MenuError(f"{where} 的 url 须为完整网址")
    else:
        raise MenuError(f"{where} 的 type 须为 click 或 view")


def load_menu(path: Path, *, settings: Settings) -> dict[str, Any]:
    """The menu in `path` with `{h5}` filled in; MenuError when WeChat would refuse it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MenuError(f"读不到菜单文件 {path}：{exc.strerror}") from exc
    h5 = settings.public_base_url.rstrip("/") + "/h5"
    try:
        menu = json.loads(text.replace("{h5}", h5))
    except ValueError as exc:
        raise MenuError(f"菜单文件不是合法的 JSON：{exc}") from exc
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
        raise MenuError(f"菜单须有 1–{MAX_BUTTONS} 个一级按钮（button）")
    for n, button in enumerate(buttons, 1):
        _check_entry(button, top=True, where=f"第 {n} 个按钮")
    return {"button": buttons}


async def create_menu(settings: Settings, path: Path = MENU_FILE) -> dict[str, Any]:
    """Create the official account's menu from `path` (through the shared token)."""
    menu = load_menu(path, settings=settings)
    channels = Channels(settings)
    try:
        await channels.create_menu(menu)
    except ChannelError as exc:
        raise RuntimeError(f"微信未接受菜单：{exc}") from exc
    finally:
        await channels.aclose()
    return menu
