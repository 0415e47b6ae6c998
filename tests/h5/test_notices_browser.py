"""A notice in a real phone-sized browser: staff write it, check the preview of the WeChat
message and the group-robot text, publish it, and a resident reads it. Screenshots of
each step go to tests/artifacts/notices-*.png."""

from __future__ import annotations

import pytest

from tests.factories import Neighbourhood
from tests.h5.browser import Phones, screenshot
from tests.h5.conftest import add_persona

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "关于本小区二次供水设施清洗期间临时停水的通知"


@pytest.fixture
async def staffed(demo: Neighbourhood) -> Neighbourhood:
    await add_persona(demo, nickname="陈社工", persona="staff")
    demo.community.wecom_robot_key = "demo-robot"
    await demo.community.save()
    return demo


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_staff_publish_and_a_resident_reads_on_phones(
    phones: Phones, staffed: Neighbourhood
) -> None:
    server = phones.server

    staff = await phones.login("陈社工", "/h5/notices/new")
    await staff.get_by_label("标题").fill(TITLE)
    await staff.get_by_label("正文").fill(
        "本周六 9:00–15:00 清洗二次供水设施，届时停水，请提前储水。\n"
        "恢复供水后如水质浑浊，请放水片刻再使用。"
    )
    await screenshot(staff, "notices-1-compose")
    await staff.get_by_role("button", name="预览").click()
    await staff.wait_for_url(server + "/h5/notices/preview")
    assert await staff.get_by_text(TITLE[:19] + "…").is_visible()
    # Everyone of the neighbourhood's community: its six people and the staff persona.
    assert await staff.locator("#recipients").inner_text() == "7 人"
    assert await staff.get_by_text("【社区通知】" + TITLE).is_visible()
    await screenshot(staff, "notices-2-preview")

    await staff.get_by_role("button", name="确认发布").click()
    await staff.wait_for_url("**/h5/notices/*?done=published")
    assert await staff.get_by_text("通知已发布").is_visible()
    assert await staff.locator("#delivery").is_visible()
    await screenshot(staff, "notices-3-published")

    resident = await phones.login("王阿姨", "/h5/notices")
    await resident.get_by_text(TITLE).click()
    await resident.wait_for_url("**/h5/notices/*")
    assert await resident.get_by_text("恢复供水后如水质浑浊").is_visible()
    assert not await resident.locator("#delivery").count()
    await screenshot(resident, "notices-4-resident-reads")

    assert phones.problems == []
