"""The shared access token: one fetch however many relays ask at once."""

from __future__ import annotations

import asyncio

import pytest

from backend.core.config import Settings
from backend.core.redis import get_kv
from bot.tokens import TokenKeeper, TokenUnavailable, lock_key, token_key
from tests.conftest import free_port

TOKEN = "/cgi-bin/token"

pytestmark = pytest.mark.usefixtures("db")


async def test_concurrent_first_requests_fetch_one_token(settings: Settings, fake_wechat):
    # Separate keepers stand for separate processes: they share only the key-value store.
    keepers = [TokenKeeper(settings) for _ in range(8)]

    tokens = await asyncio.gather(*(k.get(settings.mp_appid) for k in keepers))

    assert len(set(tokens)) == 1
    [call] = fake_wechat.calls_to(TOKEN)
    assert call.query == {
        "grant_type": "client_credential",
        "appid": settings.mp_appid,
        "secret": settings.mp_secret,
    }
    assert await get_kv().get(token_key(settings.mp_appid)) == tokens[0]
    assert await get_kv().get(lock_key(settings.mp_appid)) is None


async def test_concurrent_refreshes_of_a_stale_token_fetch_once(settings: Settings, fake_wechat):
    first = await TokenKeeper(settings).get(settings.oa_appid)
    keepers = [TokenKeeper(settings) for _ in range(8)]

    renewed = await asyncio.gather(*(k.refresh(settings.oa_appid, stale=first) for k in keepers))

    assert len(set(renewed)) == 1 and renewed[0] != first
    assert len(fake_wechat.calls_to(TOKEN)) == 2


async def test_a_token_someone_already_replaced_is_not_fetched_again(settings, fake_wechat):
    keeper = TokenKeeper(settings)
    first = await keeper.get(settings.mp_appid)
    second = await keeper.refresh(settings.mp_appid, stale=first)

    # A slower relay that also saw `first` fail gets `second` without a new fetch.
    assert await TokenKeeper(settings).refresh(settings.mp_appid, stale=first) == second
    assert len(fake_wechat.calls_to(TOKEN)) == 2


async def test_apps_have_separate_tokens(settings: Settings, fake_wechat):
    keeper = TokenKeeper(settings)
    assert await keeper.get(settings.mp_appid) != await keeper.get(settings.oa_appid)
    assert len(fake_wechat.calls_to(TOKEN)) == 2


async def test_wechat_refusing_the_secret_is_token_unavailable(settings, fake_wechat):
    fake_wechat.fail_next(TOKEN, 40125, errmsg="invalid appsecret")
    with pytest.raises(TokenUnavailable) as caught:
        await TokenKeeper(settings).get(settings.mp_appid)
    assert caught.value.errcode == 40125
    # The lock is released, so the next try fetches again.
    assert await TokenKeeper(settings).get(settings.mp_appid)


async def test_unreachable_wechat_is_token_unavailable(settings: Settings):
    offline = settings.model_copy(update={"wechat_api_base": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(TokenUnavailable):
        await TokenKeeper(offline).get(offline.mp_appid)


async def test_unknown_app_is_token_unavailable(settings: Settings, fake_wechat):
    with pytest.raises(TokenUnavailable):
        await TokenKeeper(settings).get("wx_unknown")
    assert fake_wechat.calls_to(TOKEN) == []
