"""`linli wechat menu`: the official account's custom menu from bot/wechat-menu.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.core.config import Settings
from bot.menu import MENU_FILE, MenuError, load_menu
from bot.replies import MENU_KEYS
from tests.conftest import linli_env, run_linli
from tests.fakes.wechat_server import FakeWechat

MENU_CREATE = "/cgi-bin/menu/create"


def entries(menu: dict) -> list[dict]:
    found = []
    for button in menu["button"]:
        found.extend(button.get("sub_button") or [button])
    return found


def test_the_repository_menu_is_valid_and_points_at_our_pages():
    settings = Settings(public_base_url="https://linli.example.cn")
    menu = load_menu(MENU_FILE, settings=settings)
    kinds = {e["type"] for e in entries(menu)}
    assert kinds == {"click", "view"}
    for entry in entries(menu):
        if entry["type"] == "view":
            assert entry["url"].startswith("https://linli.example.cn/h5/")
        else:
            assert entry["key"] in MENU_KEYS


@pytest.mark.parametrize(
    ("menu", "problem"),
    [
        ("not json", "JSON"),
        ({"button": []}, "一级按钮"),
        ({"button": [{"type": "click", "name": "a", "key": "POINTS"}] * 4}, "一级按钮"),
        ({"button": [{"type": "click", "name": "太长的一级按钮名称", "key": "POINTS"}]}, "名称"),
        ({"button": [{"type": "click", "name": "积分", "key": "UNKNOWN"}]}, "key"),
        ({"button": [{"type": "view", "name": "首页", "url": "/h5/"}]}, "url"),
        ({"button": [{"type": "scancode_push", "name": "扫码", "key": "x"}]}, "type"),
        ({"button": [{"name": "更多", "sub_button": []}]}, "子菜单"),
    ],
)
def test_menus_wechat_would_refuse_are_caught_before_sending(tmp_path: Path, menu, problem):
    path = tmp_path / "menu.json"
    path.write_text(menu if isinstance(menu, str) else json.dumps(menu, ensure_ascii=False))
    with pytest.raises(MenuError) as caught:
        load_menu(path, settings=Settings())
    assert problem in str(caught.value)


@pytest.mark.slow
def test_linli_wechat_menu_creates_the_menu(settings: Settings, fake_wechat: FakeWechat):
    result = run_linli("wechat", "menu", env=linli_env(), timeout=60)

    assert result.returncode == 0, result.stderr
    assert "菜单已创建" in result.stdout
    [call] = fake_wechat.calls_to(MENU_CREATE)
    assert call.query["access_token"].startswith(f"token-{settings.oa_appid}-")
    assert call.body == load_menu(MENU_FILE, settings=settings)


@pytest.mark.slow
def test_linli_wechat_menu_reports_a_refusal(settings: Settings, fake_wechat: FakeWechat):
    fake_wechat.fail_next(MENU_CREATE, 40018, errmsg="invalid button name size")
    result = run_linli("wechat", "menu", env=linli_env(), timeout=60)
    assert result.returncode == 1
    assert "40018" in result.stderr


@pytest.mark.slow
def test_linli_wechat_menu_reports_a_bad_file(settings: Settings, tmp_path: Path):
    path = tmp_path / "menu.json"
    path.write_text('{"button": []}')
    result = run_linli("wechat", "menu", "--file", str(path), env=linli_env(), timeout=60)
    assert result.returncode == 1 and "一级按钮" in result.stderr
