"""Leaderboards (monthly, yearly, per community and unit, opt-in) and the Excel export."""

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from backend.core.clock import clock
from backend.core.errors import Forbidden, Invalid
from backend.points import ledger, reports, rewards
from tests.factories import auth_headers, local, make_community, make_staff, make_unit, make_user
from tests.factories.points import adjust, award, make_reward


@pytest.fixture
async def street(db):
    community = await make_community()
    unit = await make_unit(community=community)
    people = {
        name: await make_user(
            nickname=name, community=community, unit=unit if name != "丙" else None
        )
        for name in ("甲", "乙", "丙", "丁")
    }
    for name in ("甲", "丙"):
        await ledger.set_leaderboard_opt_in(user_id=people[name].id, opt_in=True)
    clock.set(local(2025, 4, 20, 10))
    await award(people["甲"].id, 30, "a1")
    await award(people["乙"].id, 50, "a1")
    await award(people["丙"].id, 30, "a1")
    clock.set(local(2025, 5, 2, 10))
    await award(people["丁"].id, 80, "a2")
    await award(people["甲"].id, 5, "a2")
    return {"community": community, "unit": unit, **people}


async def test_the_monthly_board_ranks_points_earned_and_names_only_the_willing(street):
    board = await reports.get_leaderboard(
        viewer=street["甲"], period="month", on_date=date(2025, 4, 1)
    )

    assert [(r.rank, r.name, r.points, r.is_me) for r in board.rows] == [
        (1, "匿名邻居", 50, False),
        (2, "甲", 30, True),
        (2, "丙", 30, False),
    ]
    assert (board.start_date, board.end_date) == (date(2025, 4, 1), date(2025, 4, 30))
    assert board.my_points == 30 and board.opted_in


async def test_the_yearly_board_adds_the_months_and_spending_does_not_count(street):
    community = street["community"]
    staff = await make_staff(community)
    bag = await make_reward(
        actor=staff, community_id=community.id, title="环保袋", cost=50, stock=5
    )
    await rewards.redeem_reward(user=street["丁"], reward_id=bag.id)

    board = await reports.get_leaderboard(viewer=street["乙"], period="year")

    assert [(r.name, r.points) for r in board.rows] == [
        ("匿名邻居", 80),
        ("匿名邻居", 50),
        ("甲", 35),
        ("丙", 30),
    ]
    assert board.my_points == 50 and not board.opted_in


async def test_a_unit_board_counts_its_members(street):
    board = await reports.get_leaderboard(
        viewer=street["丙"], unit_id=street["unit"].id, period="year"
    )
    assert board.scope_name == street["unit"].name
    assert [r.points for r in board.rows] == [80, 50, 35]
    assert board.my_points == 0


async def test_a_board_needs_a_community(street):
    drifter = await make_user()
    with pytest.raises(Invalid):
        await reports.get_leaderboard(viewer=drifter)


async def test_the_leaderboard_api(client, street):
    headers = auth_headers(street["乙"])
    response = await client.get(
        "/api/v1/points/leaderboard",
        params={"period": "month", "date": "2025-04-15"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [i["points"] for i in body["items"]] == [50, 30, 30]
    assert body["items"][0]["is_me"] is True
    assert body["items"][0]["name"] == "匿名邻居"

    opted = await client.put(
        "/api/v1/me/points/preferences", json={"leaderboard_opt_in": True}, headers=headers
    )
    assert opted.json() == {"leaderboard_opt_in": True}
    again = await client.get(
        "/api/v1/points/leaderboard",
        params={"period": "month", "date": "2025-04-15"},
        headers=headers,
    )
    assert again.json()["items"][0]["name"] == "乙"
    assert (await client.get("/api/v1/me/points/preferences", headers=headers)).json() == {
        "leaderboard_opt_in": True
    }
    both = await client.get(
        "/api/v1/points/leaderboard",
        params={"community_id": street["community"].id, "unit_id": street["unit"].id},
        headers=headers,
    )
    assert both.status_code == 422


async def test_the_export_sums_issued_spent_and_expired(street):
    community = street["community"]
    staff = await make_staff(community)
    bag = await make_reward(
        actor=staff, community_id=community.id, title="环保袋", cost=20, stock=5
    )
    kept = await rewards.redeem_reward(user=street["乙"], reward_id=bag.id)
    undone = await rewards.redeem_reward(user=street["丁"], reward_id=bag.id)
    await rewards.cancel_redemption(actor=staff, redemption_id=undone.id, reason="居民取消")
    await adjust(actor=staff, user_id=street["丙"].id, delta=-10, reason="误发扣回")
    assert kept is not None

    name, content = await reports.export_ledger(
        actor=staff,
        community_id=community.id,
        start_date=date(2025, 4, 1),
        end_date=date(2025, 12, 31),
    )

    assert name.endswith(".xlsx")
    book = load_workbook(io.BytesIO(content))
    summary = {row[0]: row[1] for row in book["汇总"].iter_rows(values_only=True) if row}
    assert summary["发放"] == 195
    assert summary["兑换消费"] == -40
    assert summary["兑换退还"] == 20
    assert summary["调整扣减"] == -10
    assert summary["合计兑换（扣除退还）"] == 20
    detail = list(book["明细"].iter_rows(values_only=True))
    assert detail[0][0] == "时间"
    assert len(detail) == 1 + 5 + 3 + 1
    assert {row[4] for row in detail[1:]} == {"发放", "兑换消费", "兑换退还", "调整扣减"}


async def test_only_the_communitys_staff_export(street):
    outsider = await make_staff(await make_community())
    with pytest.raises(Forbidden):
        await reports.export_ledger(
            actor=outsider,
            community_id=street["community"].id,
            start_date=date(2025, 1, 1),
            end_date=date(2025, 1, 31),
        )


async def test_the_export_api_sends_a_workbook(client, street):
    staff = await make_staff(street["community"])
    response = await client.get(
        "/api/v1/points/export",
        params={
            "community_id": street["community"].id,
            "start_date": "2025-04-01",
            "end_date": "2025-04-30",
        },
        headers=auth_headers(staff),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(load_workbook(io.BytesIO(response.content))["明细"].iter_rows(values_only=True))
    assert len(rows) == 1 + 3
    too_long = await client.get(
        "/api/v1/points/export",
        params={
            "community_id": street["community"].id,
            "start_date": "2024-01-01",
            "end_date": "2025-04-30",
        },
        headers=auth_headers(staff),
    )
    assert too_long.status_code == 422


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/points/leaderboard", {"date": "0001-01-01"}),
        ("/api/v1/points/leaderboard", {"date": "9999-12-31", "period": "year"}),
        (
            "/api/v1/points/export",
            {"community_id": "{cid}", "start_date": "0001-01-01", "end_date": "0001-01-02"},
        ),
    ],
)
async def test_dates_out_of_range_are_422_not_500(client, street, path, params):
    staff = await make_staff(street["community"])
    params = {k: (street["community"].id if v == "{cid}" else v) for k, v in params.items()}
    response = await client.get(path, params=params, headers=auth_headers(staff))
    assert response.status_code == 422, response.text
