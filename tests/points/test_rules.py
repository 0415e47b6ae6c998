"""Earning rules: price per event type, multiplier, daily and monthly caps, versions by date."""

import asyncio
from datetime import timedelta

import pytest

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.errors import Forbidden, Invalid
from backend.points import rules as points_rules
from backend.points.exceptions import CapReached, RuleInForce
from backend.points.models import EarningTally, PointsLedgerEntry
from backend.points.views import EVENT_TYPES
from tests.factories import (
    auth_headers,
    local,
    make_community,
    make_staff,
    make_street_admin,
    make_user,
)
from tests.factories.points import adjust, make_rule

RULES = "/api/v1/points/rules"


async def admin() -> User:
    return await make_street_admin()


async def earn(user: User, source_id: str, event_type: str = "activity_attended", **kwargs):
    return await points_rules.award_by_rule(
        user_id=user.id, event_type=event_type, source_id=source_id, **kwargs
    )


async def balance(user: User) -> int:
    return (await User.get(id=user.id)).points_balance


async def test_without_a_rule_the_built_in_price_applies(db):
    user = await make_user()

    entry = await earn(user, "a1")

    assert (entry.delta, entry.rule_id, entry.source_type, entry.reason) == (
        10,
        None,
        "activity_attended",
        "参加活动",
    )


async def test_a_rule_prices_by_unit_with_its_multiplier(db):
    user, boss = await make_user(), await admin()
    await make_rule(actor=boss, event_type="service_hour", points=6, multiplier_percent=150)

    entry = await earn(user, "s1", "service_hour", quantity=2.5, reason="绿化养护岗服务")

    assert entry.delta == 23  # 6 × 2.5 × 1.5 = 22.5, rounded half up
    assert entry.reason == "绿化养护岗服务"
    assert entry.rule_id is not None


async def test_an_events_own_points_replace_the_rules_price_but_not_its_multiplier(db):
    user, boss = await make_user(), await admin()
    await make_rule(actor=boss, event_type="activity_attended", points=10, multiplier_percent=200)

    entry = await earn(user, "a1", base_points=15)

    assert entry.delta == 30


async def test_a_source_pays_once(db):
    user = await make_user()
    first = await earn(user, "a1")
    again = await earn(user, "a1")
    assert first is not None and again is None
    assert await balance(user) == 10


async def test_the_daily_cap_cuts_an_award_and_then_records_zero(db):
    user, boss = await make_user(), await admin()
    clock.set(local(2025, 5, 6, 9))
    await make_rule(actor=boss, event_type="activity_attended", points=10, daily_cap=25)

    deltas = [(await earn(user, f"a{n}")).delta for n in range(4)]

    assert deltas == [10, 10, 5, 0]
    last = await PointsLedgerEntry.get(source_id="a3")
    assert "已达上限" in last.reason
    # The next local day starts a new tally.
    clock.set(local(2025, 5, 7, 0, 1))
    assert (await earn(user, "a4")).delta == 10
    assert await balance(user) == 35


async def test_the_monthly_cap_spans_days(db):
    user, boss = await make_user(), await admin()
    clock.set(local(2025, 5, 1, 9))
    await make_rule(
        actor=boss, event_type="wish_fulfilled", points=20, daily_cap=20, monthly_cap=50
    )
    got = []
    for day in range(4):
        got.append((await earn(user, f"w{day}", "wish_fulfilled")).delta)
        clock.advance(timedelta(days=1))
    clock.set(local(2025, 6, 1, 9))
    got.append((await earn(user, "w9", "wish_fulfilled")).delta)

    assert got == [20, 20, 10, 0, 20]


async def test_caps_count_per_event_type(db):
    user, boss = await make_user(), await admin()
    await make_rule(actor=boss, event_type="activity_attended", points=10, daily_cap=10)
    await earn(user, "a1")
    assert (await earn(user, "a2")).delta == 0
    assert (await earn(user, "w1", "wish_fulfilled")).delta == 10


async def test_simultaneous_awards_never_pass_the_cap(db):
    user, boss = await make_user(), await admin()
    await make_rule(actor=boss, event_type="activity_attended", points=10, daily_cap=35)

    entries = await asyncio.gather(*(earn(user, f"a{n}") for n in range(8)))

    assert sum(e.delta for e in entries) == 35
    assert await balance(user) == 35
    tally = await EarningTally.filter(user_id=user.id, period__contains="-").values_list(
        "period", "earned"
    )
    assert all(earned == 35 for _, earned in tally)


async def test_a_new_version_applies_from_its_date_and_history_keeps_its_price(db):
    user, boss = await make_user(), await admin()
    clock.set(local(2025, 5, 1, 9))
    await make_rule(actor=boss, event_type="activity_attended", points=10)
    await make_rule(
        actor=boss,
        event_type="activity_attended",
        points=30,
        effective_from=local(2025, 6, 1),
    )
    before = await earn(user, "a1")
    late_report = None
    clock.set(local(2025, 6, 2, 9))
    after = await earn(user, "a2")
    # Reported after the change, but it happened before: the old price.
    late_report = await earn(user, "a3", occurred_at=local(2025, 5, 31, 10))

    assert (before.delta, after.delta, late_report.delta) == (10, 30, 10)
    assert (await PointsLedgerEntry.get(id=before.id)).delta == 10
    rules = {r.event.key: r for r in await points_rules.list_rules()}
    assert rules["activity_attended"].current.points == 30
    assert [r.points for r in rules["activity_attended"].history] == [10]


async def test_a_rule_cannot_start_in_the_past(db):
    boss = await admin()
    with pytest.raises(Invalid) as refused:
        await make_rule(
            actor=boss,
            event_type="activity_attended",
            points=5,
            effective_from=clock.now() - timedelta(days=1),
        )
    assert "effective_from" in refused.value.fields


async def test_only_a_street_admin_sets_rules(db):
    community = await make_community()
    staff = await make_staff(community)
    with pytest.raises(Forbidden):
        await make_rule(actor=staff, event_type="activity_attended", points=5)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"event_type": "sleeping"}, "event_type"),
        ({"points": -1}, "points"),
        ({"multiplier_percent": 1001}, "multiplier_percent"),
        ({"daily_cap": 0}, "daily_cap"),
        ({"daily_cap": 50, "monthly_cap": 40}, "daily_cap"),
    ],
)
async def test_bad_rules_are_invalid(db, values, field):
    boss = await admin()
    with pytest.raises(Invalid) as refused:
        await make_rule(actor=boss, **({"event_type": "activity_attended", "points": 5} | values))
    assert field in refused.value.fields


async def test_a_future_version_can_be_withdrawn_a_started_one_cannot(db):
    boss = await admin()
    now = await make_rule(actor=boss, event_type="service_hour", points=8)
    later = await make_rule(
        actor=boss,
        event_type="service_hour",
        points=9,
        effective_from=clock.now() + timedelta(days=3),
    )

    await points_rules.withdraw_rule(actor=boss, rule_id=later.id)
    with pytest.raises(RuleInForce):
        await points_rules.withdraw_rule(actor=boss, rule_id=now.id)


async def test_staff_adjustments_respect_the_adjustment_caps(db):
    community = await make_community()
    staff = await make_staff(community)
    resident = await make_user(community=community)
    await make_rule(actor=await admin(), event_type="staff_adjustment", points=1, monthly_cap=100)

    await adjust(actor=staff, user_id=resident.id, delta=80, reason="补录服务")
    with pytest.raises(CapReached):
        await adjust(actor=staff, user_id=resident.id, delta=30, reason="补录服务")
    await adjust(actor=staff, user_id=resident.id, delta=-10, reason="误发扣回")
    await adjust(actor=staff, user_id=resident.id, delta=20, reason="补录服务")

    assert await balance(resident) == 90


# --- API ---


async def test_anyone_reads_the_rules(client):
    response = await client.get(RULES)
    assert response.status_code == 200
    items = {i["event_type"]: i for i in response.json()["items"]}
    assert set(items) == set(EVENT_TYPES)
    assert items["activity_attended"]["current"]["points"] == 10
    assert items["activity_attended"]["label"] == "参加活动"


async def test_street_admin_adds_a_version_through_the_api(client):
    boss = await admin()
    start = (clock.now() + timedelta(days=1)).isoformat()
    response = await client.post(
        RULES,
        json={
            "event_type": "service_hour",
            "points": 8,
            "multiplier_percent": 200,
            "monthly_cap": 300,
            "effective_from": start,
            "note": "七一双倍",
        },
        headers=auth_headers(boss),
    )
    assert response.status_code == 201, response.text
    rule_id = response.json()["id"]
    listed = {i["event_type"]: i for i in (await client.get(RULES)).json()["items"]}
    assert [u["id"] for u in listed["service_hour"]["upcoming"]] == [rule_id]

    gone = await client.delete(f"{RULES}/{rule_id}", headers=auth_headers(boss))
    assert gone.status_code == 204


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"event_type": "activity_attended", "points": 5}, 403, "forbidden"),
    ],
)
async def test_staff_may_not_add_rules(client, body, status, code):
    staff = await make_staff(await make_community())
    response = await client.post(RULES, json=body, headers=auth_headers(staff))
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize(
    "body",
    [
        {"event_type": "activity_attended", "points": "5"},
        {"event_type": "activity_attended", "points": 5, "effective_from": "2030-01-01T00:00:00"},
        {"event_type": "nap", "points": 5},
        {"event_type": "activity_attended", "points": 5, "daily_cap": 0},
    ],
)
async def test_bad_rule_bodies_are_422(client, body):
    response = await client.post(RULES, json=body, headers=auth_headers(await admin()))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
