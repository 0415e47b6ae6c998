"""活动报名 in a real browser at phone size: the last seat, then the waitlist, then full.

Debian's Chromium driven by playwright against `linli serve` on SQLite (the `phones`
fixture of conftest.py). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import pytest

from backend.accounts.models import User
from backend.activities import bookings
from tests.factories import Neighbourhood, make_user
from tests.factories.activities import make_activity
from tests.h5.browser import Phones, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_last_seat_then_waitlist_then_full_on_a_phone(
    phones: Phones, demo: Neighbourhood
) -> None:
    activity = await make_activity(demo.community, capacity=2, waitlist_capacity=1)
    early = await make_user(community=demo.community, nickname="早鸟")
    await bookings.book_activity(user_id=early.id, activity_id=activity.id)
    neighbour = await make_user(community=demo.community, nickname="李阿姨")
    latecomer = await make_user(community=demo.community, nickname="赵叔叔")
    detail = f"{phones.server}/h5/activities/{activity.id}"

    # 王阿姨 takes the last seat.
    page = await phones.open(user=demo.resident)
    await page.goto(f"{phones.server}/h5/activities")
    card = page.get_by_role("link", name="舞韵瑜伽")
    assert "剩余 1/2" in await card.inner_text()
    await screenshot(page, "h5-activities-list")
    await card.click()
    await page.wait_for_url(detail)
    await page.get_by_role("button", name="立即报名").click()
    await page.wait_for_url(f"{detail}?done=confirmed")
    assert await page.locator("#my-status").inner_text() == "已报名"
    assert "已满" in await page.locator("#places").inner_text()
    await screenshot(page, "h5-activity-booked")

    # The next person finds the seats gone and joins the waitlist.
    page = await phones.open(user=neighbour)
    await page.goto(detail)
    join = page.get_by_role("button", name="加入候补")
    assert await join.is_visible()
    await join.click()
    await page.wait_for_url(f"{detail}?done=waitlisted")
    assert await page.locator("#my-status").inner_text() == "候补第 1 位"
    await screenshot(page, "h5-activity-waitlisted")

    # And the one after that finds it full.
    page = await phones.open(user=latecomer)
    await page.goto(detail)
    full = page.get_by_role("button", name="已满")
    assert await full.is_visible() and await full.is_disabled()
    await screenshot(page, "h5-activity-full")

    # Staff show the rotating check-in code.
    staff = await User.get(id=activity.created_by_id)
    page = await phones.open(user=staff)
    await page.goto(f"{detail}/qr")
    assert await page.locator("svg").first.is_visible()
    assert len(await page.locator("#code").inner_text()) == 6
    await screenshot(page, "h5-activity-qr")

    assert phones.problems == []
