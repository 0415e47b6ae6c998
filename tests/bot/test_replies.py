"""What the official account answers: activities and wishes with links, points, how to report
in, menu clicks — through the signed callback, as WeChat sends them."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

import pytest

from backend.accounts.models import WechatIdentity
from backend.activities.models import Activity
from backend.core.config import get_settings
from backend.wishes.models import Wish
from bot.replies import MENU_KEYS, cdata
from tests.bot.test_callback import (
    ACCOUNT,
    NOW,
    OPENID,
    _frozen_clock,  # noqa: F401 (autouse fixture)
    aes_key,  # noqa: F401 (fixture)
    post_plain,
    reply_of,
    safe_mode_request,
    text_message,
)
from tests.factories import make_community, make_user
from tests.factories.activities import make_activity


def click_event(key: str, *, event: str = "CLICK") -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{int(NOW.timestamp())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event>"
        f"<EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


async def make_wish(community, title: str, *, status: str = "open"):
    poster = await make_user(community=community)
    return await Wish.create(
        community=community,
        poster=poster,
        title=title,
        description="说明",
        category="生活帮扶",
        status=status,
        created_at=NOW,
    )


async def link_sender(settings, community=None):
    user = await make_user(community=community, points_balance=42)
    await WechatIdentity.create(
        user=user, kind="official_account", app_id=settings.oa_appid, openid=OPENID
    )
    return user


async def test_activities_keyword_lists_upcoming_activities_with_links(client, settings):
    home, elsewhere = await make_community(), await make_community()
    await link_sender(settings, home)
    tea = await make_activity(home, title="午间一小时·茶文化", starts_in=timedelta(days=2))
    await make_activity(home, title="已结束的讲座", starts_in=timedelta(days=-3))
    await make_activity(home, title="已取消的活动", cancelled=True)
    far = await make_activity(elsewhere, title="别的社区的活动", starts_in=timedelta(days=1))

    content = reply_of(await post_plain(client, settings, text_message("活动")))["Content"]

    assert "本社区" in content
    assert "午间一小时·茶文化" in content and "3月5日" in content
    assert f"{settings.public_base_url}/h5/activities/{tea.id}" in content
    for hidden in ("已结束", "已取消", "别的社区"):
        assert hidden not in content
    assert f"/h5/activities/{far.id}" not in content


async def test_an_unlinked_sender_sees_the_streets_activities(client, settings):
    community = await make_community()
    activity = await make_activity(community, title="社区运动会", starts_in=timedelta(days=5))
    content = reply_of(await post_plain(client, settings, text_message("有什么活动")))["Content"]
    assert "街道" in content and f"/h5/activities/{activity.id}" in content


async def test_no_activities_still_answers_with_the_page(client, settings):
    content = reply_of(await post_plain(client, settings, text_message("活动")))["Content"]
    assert "暂时没有" in content and f"{settings.public_base_url}/h5/activities" in content


async def test_wishes_keyword_lists_open_wishes(client, settings):
    community = await make_community()
    await link_sender(settings, community)
    ride = await make_wish(community, "周五下午陪我去医院复诊，谢谢热心的邻居们")
    await make_wish(community, "已认领的心愿", status="claimed")
    await make_wish(community, "待审核的心愿", status="pending_review")

    content = reply_of(await post_plain(client, settings, text_message("心愿")))["Content"]

    assert "周五下午陪我去医院复诊，谢谢热心的…" in content  # long titles are cut
    assert f"{settings.public_base_url}/h5/wishes/{ride.id}" in content
    assert "已认领" not in content and "待审核" not in content


async def test_report_in_keyword_explains_the_steps(client, settings):
    content = reply_of(await post_plain(client, settings, text_message("报到")))["Content"]
    assert f"{settings.public_base_url}/h5/party" in content and "审核" in content


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("POINTS", "42"),
        ("ACTIVITIES", "/h5/activities"),
        ("WISHES", "/h5/wishes"),
        ("PARTY", "/h5/party"),
        ("MENU", "关键词"),
        ("SOMETHING_OLD", "关键词"),
    ],
)
async def test_menu_clicks_answer_like_keywords(client, settings, key, expected):
    await link_sender(settings)
    content = reply_of(await post_plain(client, settings, click_event(key)))["Content"]
    assert expected in content


async def test_a_menu_link_opening_gets_no_reply(client, settings):
    response = await post_plain(
        client, settings, click_event("https://example.com/h5/", event="VIEW")
    )
    assert response.status_code == 200 and response.text == "success"


def test_every_menu_key_has_an_answer():
    assert set(MENU_KEYS.values()) <= {"points", "activities", "wishes", "party", "menu"}


# --- titles that would break the XML ---

AWKWARD_TITLE = "茶]]><a>&amp;会\x07"
SHOWN_TITLE = "茶]]><a>&amp;会"  # the control character cannot be carried by XML at all


def parsed_content(xml_text: str) -> str:
    # The standard library's parser: well-formed or an exception, nothing in between.
    root = ElementTree.fromstring(xml_text)
    assert [child.tag for child in root] == [
        "ToUserName",
        "FromUserName",
        "CreateTime",
        "MsgType",
        "Content",
    ]
    assert root.findtext("ToUserName") == OPENID and root.findtext("MsgType") == "text"
    return root.findtext("Content")


async def test_a_title_holding_cdata_end_and_markup_keeps_the_plain_reply_well_formed(
    client, settings
):
    community = await make_community()
    activity = await make_activity(community, starts_in=timedelta(days=2))
    # Written past the service, which refuses the control character: data from before the check.
    await Activity.filter(id=activity.id).update(title=AWKWARD_TITLE)
    response = await post_plain(client, settings, text_message("活动"))
    assert response.status_code == 200
    content = parsed_content(response.text)
    assert SHOWN_TITLE in content
    assert f"/h5/activities/{activity.id}" in content


@pytest.mark.usefixtures("aes_key")
async def test_a_title_holding_cdata_end_keeps_the_safe_mode_reply_well_formed(client, settings):
    community = await make_community()
    await make_wish(community, AWKWARD_TITLE)
    key = get_settings().oa_aes_key
    crypto, params, envelope = safe_mode_request(settings, key, text_message("心愿"))
    response = await client.post("/wechat/callback", params=params, content=envelope.encode())
    outer = ElementTree.fromstring(response.text)
    plain = crypto.decrypt_message(
        response.text,
        outer.findtext("MsgSignature"),
        outer.findtext("TimeStamp"),
        outer.findtext("Nonce"),
    )
    assert SHOWN_TITLE in parsed_content(plain)


def test_cdata_splits_every_section_end():
    text = "a]]>b]]]]>c\x00d"
    xml = f"<x>{cdata(text)}</x>"
    assert ElementTree.fromstring(xml).text == "a]]>b]]]]>cd"
