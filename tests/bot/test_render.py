"""Message templates: every key renders, and fields fit WeChat's limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.render import RenderError, fit_field, fit_markdown, render

NOW = datetime(2025, 3, 3, 1, 30, tzinfo=UTC)
CONTEXTS = {
    "notice": {"title": "停水通知", "body": "明天停水"},
    "booking": {
        "activity_id": 1,
        "activity_title": "茶文化",
        "starts_at": "2025-03-04T04:00:00+00:00",
        "status": "confirmed",
    },
    "reminder": {
        "activity_id": 1,
        "activity_title": "剪纸",
        "starts_at": "2025-03-04T04:00:00+00:00",
        "location": "党群服务中心 3 楼",
    },
    "wish": {"wish_id": 3, "wish_title": "周五陪同去医院", "status": "claimed"},
    "reward": {"redemption_id": 9, "reward_title": "环保袋", "pickup_code": "A1B2C3"},
}


@pytest.mark.parametrize("key", sorted(CONTEXTS))
def test_every_template_key_renders_fields_and_markdown(key: str):
    rendered = render(key, CONTEXTS[key], now=NOW, timezone="Asia/Shanghai")
    assert rendered.fields and all(rendered.fields.values())
    assert rendered.page and rendered.url and rendered.markdown
    assert rendered.wechat_data() == {k: {"value": v} for k, v in rendered.fields.items()}


def test_times_are_shown_in_beijing_time():
    rendered = render("booking", CONTEXTS["booking"], now=NOW, timezone="Asia/Shanghai")
    assert rendered.fields["time2"] == "2025年3月4日 12:00"
    assert rendered.fields["phrase3"] == "报名成功"


def test_long_values_are_cut_to_wechat_limits():
    title = "一二三四五六七八九十" * 3
    rendered = render("notice", {"title": title}, now=NOW, timezone="Asia/Shanghai")
    assert rendered.fields["thing1"] == title[:19] + "…"
    assert len(rendered.fields["thing1"]) == 20
    assert fit_field("phrase3", "候补转正成功啦") == "候补转正成"
    assert fit_field("character_string2", "X" * 40) == "X" * 32
    assert fit_field("thing1", "两行\n文字") == "两行 文字"
    assert fit_field("time2", "2025年3月4日 12:00") == "2025年3月4日 12:00"


def test_markdown_is_cut_to_the_robot_limit():
    text = "邻" * 3000
    cut = fit_markdown(text)
    assert len(cut.encode()) <= 4096 and cut.endswith("…")


def test_missing_context_and_unknown_keys_are_render_errors():
    with pytest.raises(RenderError):
        render("booking", {}, now=NOW, timezone="Asia/Shanghai")
    with pytest.raises(RenderError):
        render("no_such_template", {}, now=NOW, timezone="Asia/Shanghai")
    with pytest.raises(RenderError):
        render("../replies/menu", {}, now=NOW, timezone="Asia/Shanghai")
    with pytest.raises(RenderError):
        render("booking", {**CONTEXTS["booking"], "starts_at": "soon"}, now=NOW, timezone="UTC")
