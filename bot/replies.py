"""What the official account answers: the subscribe welcome, keywords and menu clicks.

Keywords 活动 (upcoming activities with links), 心愿 (open wishes), 积分 (the sender's
balance when their account is linked) and 报到 (how to report in); the custom menu's
click buttons send the same answers (their keys are in MENU_KEYS, which `linli wechat
menu` checks the menu file against); anything else gets the menu of keywords.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from wechatpy.messages import BaseMessage
from wechatpy.replies import BaseReply, TextReply

from backend.accounts.models import User, WechatIdentity
from backend.activities import catalogue as activity_catalogue
from backend.core.clock import clock, to_local
from backend.core.config import get_settings
from backend.core.pagination import PageRequest
from backend.wishes import lists as wishes_lists

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates" / "replies"

# Replies are plain text inside CDATA (written by XmlSafeTextReply), so no HTML escaping;
# they never echo what the user sent.
_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)

# A passive text reply holds about 2,000 bytes: a few items, short titles.
LIST_ITEMS = 5
TITLE_CHARS = 18
# keyword -> answer
KEYWORDS = {"积分": "points", "活动": "activities", "心愿": "wishes", "报到": "party"}
# custom-menu click key -> answer
MENU_KEYS = {
    "POINTS": "points",
    "ACTIVITIES": "activities",
    "WISHES": "wishes",
    "PARTY": "party",
    "MENU": "menu",
}
WELCOME_EVENTS = ("subscribe", "subscribe_scan")
# Characters XML 1.0 cannot carry at all, escaped or not (C0 controls but tab and newlines,
# surrogates, U+FFFE/U+FFFF): a title holding one would make the whole reply unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def cdata(text: str) -> str:
    """`text` as CDATA sections: "]]>" would end a section early, so it is split across two."""
    return "<![CDATA[" + _NOT_XML.sub("", text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


class XmlSafeTextReply(TextReply):
    """wechatpy's TextReply writes every value into CDATA as it is, so a title holding "]]>"
    (or a control character) breaks the XML; this one writes the same reply safely."""

    def render(self) -> str:
        nodes = (
            f"<ToUserName>{cdata(self.target)}</ToUserName>",
            f"<FromUserName>{cdata(self.source)}</FromUserName>",
            f"<CreateTime>{int(self.time)}</CreateTime>",
            f"<MsgType>{cdata(self.type)}</MsgType>",
            f"<Content>{cdata(self.content)}</Content>",
        )
        return "<xml>\n" + "\n".join(nodes) + "\n</xml>"


@dataclass(frozen=True)
class Item:
    title: str
    note: str
    path: str


def render_reply(name: str, **context: object) -> str:
    """Render one reply template (bot/templates/replies/<name>.txt.j2) with the H5 base link."""
    h5 = get_settings().public_base_url.rstrip("/") + "/h5"
    return _env.get_template(f"{name}.txt.j2").render(h5=h5, **context).strip()


async def linked_user(openid: str) -> User | None:
    """The user behind this official-account openid, when they have logged in once."""
    identity = await WechatIdentity.filter(
        kind="official_account", app_id=get_settings().oa_appid, openid=openid
    ).first()
    return await User.get_or_none(id=identity.user_id) if identity else None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def _local(moment: datetime) -> str:
    local = to_local(moment)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


async def _upcoming_activities(community_id: int | None) -> list[Item]:
    page = await activity_catalogue.list_activities(
        page=PageRequest(limit=LIST_ITEMS), community_id=community_id, upcoming=True
    )
    return [
        Item(_short(v.activity.title), _local(v.activity.starts_at), f"/activities/{v.activity.id}")
        for v in page.items
    ]


async def _open_wishes(community_id: int | None) -> list[Item]:
    page = await wishes_lists.list_wishes(
        page=PageRequest(limit=LIST_ITEMS), community_id=community_id, status="open"
    )
    return [Item(_short(w.title), w.community_name, f"/wishes/{w.id}") for w in page.items]


async def _answer(name: str, openid: str) -> str:
    if name in ("menu", "party"):
        return render_reply(name)
    user = await linked_user(openid)
    if name == "points":
        if user is None:
            return render_reply("points_unlinked")
        return render_reply("points", balance=user.points_balance)
    community_id = user.community_id if user else None
    find = _upcoming_activities if name == "activities" else _open_wishes
    items = await find(community_id)
    if not items and community_id is not None:
        # Nothing in their own community: the street's are better than an empty answer.
        community_id = None
        items = await find(None)
    return render_reply(name, items=items, own_community=community_id is not None)


async def answer_message(message: BaseMessage) -> BaseReply | None:
    """The reply to one message or event, or None when WeChat should get no answer."""
    if message.type == "event":
        if message.event in WELCOME_EVENTS:
            return _text(message, render_reply("welcome"))
        if message.event == "click":
            name = MENU_KEYS.get(str(getattr(message, "key", "") or ""), "menu")
            return _text(message, await _answer(name, message.source))
        return None
    if message.type == "unknown":  # a message or event type wechatpy does not know yet
        return None
    content = message.content if message.type == "text" else None
    text = content.strip() if isinstance(content, str) else ""
    name = next((answer for word, answer in KEYWORDS.items() if word in text), "menu")
    return _text(message, await _answer(name, message.source))


def _text(message: BaseMessage, content: str) -> TextReply:
    return XmlSafeTextReply(message=message, content=content, time=int(clock.now().timestamp()))
