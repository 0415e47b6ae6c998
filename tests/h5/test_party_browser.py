"""在职党员报到 in a real browser at phone size (375×812): a resident reports in, staff
approve, the member claims a post and checks in with the code on the staff's QR screen.
Screenshots go to tests/artifacts/party-*.png for a human to look at."""

from __future__ import annotations

import pytest

from backend.party import hours, posts
from backend.party.schemas import PostIn
from tests.factories import Neighbourhood, make_staff
from tests.h5.browser import Phones, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_report_in_approve_claim_and_check_in_on_a_phone(
    phones: Phones, demo: Neighbourhood
) -> None:
    server = phones.server
    staff = await make_staff(demo.community, persona="party-staff", nickname="陈社工")
    post = await posts.create_post(
        actor=staff,
        data=PostIn(
            community_id=demo.community.id,
            title="绿化养护岗",
            term=hours.current_term(),
            capacity=3,
            description="每周六上午养护小区绿地，劝导文明养犬",
            location="大田社区中心花园",
            skills=["环境绿化", "文明劝导"],
            # The server runs on the real clock: a check-in must be open whenever CI runs.
            open_from=0,
            open_until=24 * 60,
        ),
    )
    await posts.create_post(
        actor=staff,
        data=PostIn(
            community_id=demo.community.id,
            title="法律咨询岗",
            term=hours.current_term(),
            capacity=2,
            skills=["法律咨询"],
        ),
    )

    # The resident reports in.
    member = await phones.login("王阿姨", "/h5/party")
    await member.get_by_role("link", name="我要报到").click()
    await member.wait_for_url(server + "/h5/party/register")
    await member.fill("#name", "王秀英")
    await member.fill("#phone", "139 1234 5678")
    await member.fill("#work_unit", "静安区税务局")
    await member.fill("#party_org", "静安区税务局机关党委")
    await member.get_by_text("环境绿化", exact=True).click()
    await member.get_by_text("周六", exact=True).click()
    await screenshot(member, "party-register")
    await member.get_by_role("button", name="提交报到").click()
    await member.wait_for_url(server + "/h5/party?done=registered")
    assert await member.locator("#registration-status").inner_text() == "待审核"
    await screenshot(member, "party-pending")

    # Staff approve.
    desk = await phones.login("陈社工", "/h5/party/staff/queue")
    assert await desk.get_by_text("139****5678").is_visible()
    await screenshot(desk, "party-queue")
    await desk.get_by_role("button", name="通过「王秀英」").click()
    await desk.wait_for_url("**/h5/party/staff/queue?**done=approved")
    assert await desk.get_by_text("已通过报到").is_visible()

    # The member sees the post suggested for their skills and claims it.
    await member.goto(server + "/h5/party/posts")
    assert await member.get_by_text("为您推荐").is_visible()
    await screenshot(member, "party-posts")
    await member.get_by_role("button", name="认领「绿化养护岗」").first.click()
    await member.wait_for_url(server + "/h5/party/posts?done=claimed")
    assert await member.get_by_text("岗位认领成功").is_visible()

    # Staff show the rotating QR code; the member checks in with it.
    await desk.goto(server + f"/h5/party/staff/posts/{post.id}/qr")
    code = (await desk.locator("#code").inner_text()).strip()
    assert len(code) == 6 and code.isdigit()
    assert await desk.locator("svg.segno").is_visible()
    await screenshot(desk, "party-qr")
    await member.goto(server + f"/h5/party/checkin?post={post.id}&code={code}")
    assert await member.locator("#code").input_value() == code
    await member.get_by_role("button", name="签到").click()
    await member.wait_for_url(f"**/h5/party/checkin?post={post.id}&done=checked_in")
    assert await member.get_by_text("签到成功").is_visible()
    assert await member.get_by_role("button", name="签退").is_visible()
    await screenshot(member, "party-checked-in")

    await member.goto(server + "/h5/party")
    assert await member.locator("#registration-status").inner_text() == "已报到"
    assert await member.get_by_text("绿化养护岗").is_visible()
    await screenshot(member, "party-home")

    await desk.goto(server + f"/h5/party/staff/posts/{post.id}")
    assert await desk.get_by_text("王秀英").first.is_visible()
    await screenshot(desk, "party-staff-post")
    await desk.goto(server + "/h5/party/staff/report")
    assert await desk.get_by_text("静安区税务局").first.is_visible()
    await screenshot(desk, "party-report")
    assert phones.problems == []
