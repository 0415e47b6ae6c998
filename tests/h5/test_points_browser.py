"""A reward in a real phone-sized browser: a resident redeems it with confirmation and gets
a pickup code with its QR, staff type the code on the 核销 page and hand the reward over.
Screenshots of each step go to tests/artifacts/points-*.png."""

from __future__ import annotations

import pytest

from backend.accounts.models import User
from backend.points import ledger
from backend.points.models import Redemption
from tests.factories import Neighbourhood
from tests.factories.points import make_reward
from tests.h5.browser import Phones, screenshot
from tests.h5.conftest import add_persona

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
async def stocked(demo: Neighbourhood) -> Neighbourhood:
    """The demo resident with 100 points, a staff member, and a reward in their community."""
    staff = await add_persona(demo, nickname="陈社工", persona="staff")
    for source, amount, reason in (("a1", 60, "参加「舞韵瑜伽」"), ("w1", 40, "帮邻居实现微心愿")):
        await ledger.award(
            user_id=demo.resident.id,
            amount=amount,
            source_type="activity",
            source_id=source,
            reason=reason,
        )
    await make_reward(
        actor=staff,
        community_id=demo.community.id,
        title="环保购物袋",
        description="可折叠帆布袋，买菜更方便。",
        cost=30,
        stock=5,
        pickup_place="居委会一楼服务窗口",
    )
    return demo


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_resident_redeems_and_staff_verify_on_phones(
    phones: Phones, stocked: Neighbourhood
) -> None:
    server = phones.server

    # The resident: balance, shop, confirmation, pickup code.
    resident = await phones.login("王阿姨", "/h5/points")
    assert await resident.get_by_text("可用积分").is_visible()
    assert await resident.locator(".pt-hero__balance").inner_text() == "100"
    assert await resident.get_by_text("帮邻居实现微心愿").is_visible()
    await screenshot(resident, "points-1-my-points")

    await resident.get_by_role("link", name="积分商城", exact=True).click()
    await resident.wait_for_url(server + "/h5/points/rewards")
    await screenshot(resident, "points-2-shop")
    await resident.get_by_text("环保购物袋").click()
    await resident.get_by_role("link", name="立即兑换").click()
    assert await resident.get_by_text("剩余 70 分").is_visible()
    await screenshot(resident, "points-3-confirm")

    await resident.get_by_role("button", name="确认兑换").click()
    await resident.wait_for_url("**/h5/points/redemptions/*?new=1")
    assert await resident.get_by_text("兑换成功，请凭领取码领取").is_visible()
    code = (await resident.get_by_test_id("pickup-code").inner_text()).strip()
    assert len(code) == 8 and code.isdigit()
    qr = await resident.locator(".pt-code__qr svg").bounding_box()
    assert qr is not None and qr["width"] >= 180
    await screenshot(resident, "points-4-pickup-code")

    # Staff: type the code, check the preview, verify.
    staff = await phones.login("陈社工", "/h5/points/staff")
    await screenshot(staff, "points-5-staff-tools")
    await staff.get_by_role("link", name="核销领取码").click()
    await staff.get_by_label("领取码").fill(f"{code[:4]} {code[4:]}")
    await staff.get_by_role("button", name="查询").click()
    assert await staff.get_by_text("王**").is_visible()
    assert await staff.get_by_text("待领取").is_visible()
    await screenshot(staff, "points-6-verify-preview")
    await staff.get_by_role("button", name="确认核销").click()
    assert await staff.get_by_text("核销成功").is_visible()
    await screenshot(staff, "points-7-verified")

    # The resident's code is used up.
    await resident.reload()
    assert await resident.get_by_text("已领取").first.is_visible()
    await screenshot(resident, "points-8-picked-up")

    redemption = await Redemption.get()
    assert redemption.status == "fulfilled" and redemption.pickup_code == code
    assert (await User.get(id=stocked.resident.id)).points_balance == 70
    assert phones.problems == []
