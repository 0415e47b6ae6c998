"""The shared access token: one fetch however many relays ask at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from backend.core.config import Settings
from backend.core.redis import get_kv
from bot.tokens import TokenKeeper, TokenUnavailable, lock_key, token_key
from tests.conftest import free_port

TOKEN = "/cgi-bin/stable_token"

pytestmark = pytest.mark.usefixtures("db")


async def test_concurrent_first_requests_fetch_one_token(settings: Settings, fake_wechat):
    # Separate keepers stand for separate processes: they share only the key-value store.
    keepers = [TokenKeeper(settings) for _ in range(8)]

    tokens = await asyncio.gather(*(k.get(settings.mp_appid) for k in keepers))

    assert len(set(tokens)) == 1
    [call] = fake_wechat.calls_to(TOKEN)
    assert call.method == "POST" and call.body == {
        "grant_type": "client_credential",
        "appid": settings.mp_appid,
        "secret": settings.mp_secret,
        "force_refresh": False,
    }
    assert await get_kv().get(token_key(settings.mp_appid)) == tokens[0]
    assert await get_kv().get(lock_key(settings.mp_appid)) is None


async def test_concurrent_refreshes_of_a_stale_token_fetch_once(settings: Settings, fake_wechat):
    first = await TokenKeeper(settings).get(settings.oa_appid)
    fake_wechat.invalidate_tokens()  # it expired, or was forced elsewhere
    keepers = [TokenKeeper(settings) for _ in range(8)]

    renewed = await asyncio.gather(*(k.refresh(settings.oa_appid, stale=first) for k in keepers))

    assert len(set(renewed)) == 1 and renewed[0] != first
    assert len(fake_wechat.calls_to(TOKEN)) == 2


async def test_a_token_someone_already_replaced_is_not_fetched_again(settings, fake_wechat):
    keeper = TokenKeeper(settings)
    first = await keeper.get(settings.mp_appid)
    fake_wechat.invalidate_tokens()
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


async def send_with(fake_wechat, token: str) -> dict:
    async with httpx.AsyncClient(base_url=fake_wechat.base_url) as http:
        answer = await http.post(
            "/cgi-bin/message/subscribe/send", params={"access_token": token}, json={}
        )
    return answer.json()


async def fetch_plain_token(fake_wechat, appid: str) -> str:
    async with httpx.AsyncClient(base_url=fake_wechat.base_url) as http:
        answer = await http.get(
            "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": appid, "secret": "s"},
        )
    return answer.json()["access_token"]


async def test_another_system_fetching_tokens_for_the_account_leaves_ours_working(
    settings: Settings, fake_wechat
):
    ours = await TokenKeeper(settings).get(settings.mp_appid)

    # Another system on the same account fetches plain tokens, twice: its first one ends at
    # once (WeChat's plain interface keeps one live token), ours from the stable one does not.
    theirs = await fetch_plain_token(fake_wechat, settings.mp_appid)
    await fetch_plain_token(fake_wechat, settings.mp_appid)

    assert (await send_with(fake_wechat, theirs))["errcode"] == 40001
    assert (await send_with(fake_wechat, ours))["errcode"] == 0
    # An unforced stable fetch hands out the same token again.
    assert await TokenKeeper(settings).refresh(settings.mp_appid, stale=None) == ours


async def test_a_refused_token_that_wechat_still_hands_out_is_forced_once(
    settings: Settings, fake_wechat
):
    first = await TokenKeeper(settings).get(settings.oa_appid)

    renewed = await TokenKeeper(settings).refresh(settings.oa_appid, stale=first)

    assert renewed != first
    assert [c.body["force_refresh"] for c in fake_wechat.calls_to(TOKEN)] == [False, False, True]
    assert (await send_with(fake_wechat, first))["errcode"] == 40001
