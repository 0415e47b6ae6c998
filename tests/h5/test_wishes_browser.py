"""A wish in a real phone-sized browser: a resident posts it, staff approve it (the phone
number in the text highlighted), a party member claims it (seeing only a masked number),
the resident accepts the claimer (sharing her contact), he fulfils it, the resident
confirms. Screenshots of each step go to tests/artifacts/wish-*.png."""

from __future__ import annotations

import pytest

from backend.accounts.models import User
from backend.core.security import blind_index, encrypt_field
from tests.factories import Neighbourhood
from tests.h5.browser import Phones, screenshot
from tests.h5.conftest import add_persona

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RESIDENT_PHONE = "13912345678"


@pytest.fixture
async def cast(demo: Neighbourhood) -> Neighbourhood:
    """The demo resident with a phone, plus a staff member and a party member."""
    await User.filter(id=demo.resident.id).update(
        phone_encrypted=encrypt_field(RESIDENT_PHONE), phone_index=blind_index(RESIDENT_PHONE)
    )
    await add_persona(demo, nickname="陈社工", persona="staff")
    await add_persona(demo, nickname="李建国", persona="party_member")
    return demo


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_wish_on_a_phone_from_posting_to_thanks(
    phones: Phones, cast: Neighbourhood
) -> None:
    # 1. The resident posts a wish (with her number in it, as people do).
    resident = await phones.login("王阿姨", "/h5/wishes")
    await resident.get_by_role("link", name="发布心愿").first.click()
    await resident.fill("#title", "想请人陪我去医院复诊")
    await resident.select_option("#category", label="助老助残")
    await resident.fill("#description", f"周五上午去瑞金医院复诊，联系我 {RESIDENT_PHONE}")
    await resident.fill("#address", "大田社区 5 号楼 302")
    await screenshot(resident, "wish-1-post-form")
    await resident.get_by_role("button", name="提交审核").click()
    await resident.get_by_text("心愿已提交").wait_for()
    wish_url = resident.url.split("?")[0]
    await screenshot(resident, "wish-2-posted")

    # 2. Staff see the number marked in the review queue and approve.
    staff = await phones.login("陈社工", "/h5/wishes")
    await staff.get_by_role("link", name="审核").click()
    mark = staff.locator("mark", has_text=RESIDENT_PHONE)
    assert await mark.count() == 1 and await mark.is_visible()
    await screenshot(staff, "wish-3-review-queue")
    await staff.get_by_role("button", name="通过", exact=True).click()
    await staff.get_by_text("已审核通过").wait_for()

    # 3. A party member finds it on the wall (number masked) and claims it.
    member = await phones.login("李建国", "/h5/wishes")
    wall_text = await member.locator("main").inner_text()
    assert RESIDENT_PHONE not in wall_text and "139****5678" in wall_text
    await screenshot(member, "wish-4-wall")
    await member.get_by_text("想请人陪我去医院复诊").click()
    await member.get_by_role("button", name="我来认领").click()
    await member.get_by_text("认领成功").wait_for()
    # Claiming shares only a masked number until the resident accepts.
    claimed_text = await member.locator("main").inner_text()
    assert RESIDENT_PHONE not in claimed_text and "139****5678" in claimed_text
    assert "5 号楼 302" not in claimed_text
    await screenshot(member, "wish-5-claimed")

    # 4. The resident accepts the claimer, and only then is her contact shared.
    await resident.goto(wish_url)
    await resident.get_by_role("button", name="接受认领并告知联系方式").click()
    await resident.get_by_text("已接受认领，并记入进展记录").wait_for()
    assert await resident.get_by_text("接受认领，告知联系方式").first.is_visible()
    await screenshot(resident, "wish-5b-accepted")
    await member.reload()
    assert await member.get_by_role("link", name=RESIDENT_PHONE).is_visible()
    await member.fill("textarea[name=note]", "已陪同复诊，医生说恢复得很好")
    await member.get_by_role("button", name="已完成").click()
    await member.get_by_text("等待心愿人确认").wait_for()

    # 5. The resident confirms and thanks.
    await resident.goto(wish_url)
    await resident.select_option("#rating", "5")
    await resident.fill("input[name=thanks]", "谢谢李师傅！")
    await screenshot(resident, "wish-6-confirm")
    await resident.get_by_role("button", name="确认并感谢").click()
    await resident.get_by_text("感谢确认").wait_for()
    assert await resident.get_by_text("已圆梦").first.is_visible()
    await screenshot(resident, "wish-7-closed")

    # 6. The two-way board: staff publish a need for the community.
    await staff.get_by_role("link", name="双向认领").click()
    await staff.get_by_role("link", name="发布社区需求").click()
    await staff.fill("#title", "助老陪护")
    await staff.fill("#quantity", "3")
    await staff.fill("textarea[name=description]", "每周二上午陪伴独居老人聊天、读报")
    await staff.get_by_role("button", name="发布").click()
    await staff.get_by_text("余 3/3").wait_for()
    await screenshot(staff, "wish-8-board-need")
    assert phones.problems == []
    assert (await User.get(persona="party_member")).points_balance == 10
