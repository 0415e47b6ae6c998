import pytest
from tortoise.transactions import in_transaction

from backend.accounts.models import User
from backend.core.errors import Forbidden, NotFound
from backend.core.pagination import PageRequest
from backend.orgs.models import Community
from backend.points import ledger
from backend.points.exceptions import InsufficientPoints
from backend.points.models import PointsLedgerEntry
from tests.factories import make_community, make_staff, make_street_admin, make_user
from tests.factories.points import adjust, award, spend


async def balance_of(user_id: int) -> int:
    return (await User.get(id=user_id)).points_balance


async def ledger_sum(user_id: int) -> int:
    return sum(await PointsLedgerEntry.filter(user_id=user_id).values_list("delta", flat=True))


async def test_award_writes_one_ledger_row_and_moves_the_balance(db):
    user = await make_user()

    entry = await award(user.id, 30, "a1")

    assert entry is not None
    assert (entry.delta, entry.balance_after, entry.source_type, entry.source_id) == (
        30,
        30,
        "activity",
        "a1",
    )
    assert entry.created_at is not None
    assert await balance_of(user.id) == 30
    assert await PointsLedgerEntry.filter(user_id=user.id).count() == 1


async def test_the_same_source_pays_once(db):
    user = await make_user()

    first = await award(user.id, 30, "a1")
    again = await award(user.id, 30, "a1")

    assert first is not None
    assert again is None
    assert await balance_of(user.id) == 30
    assert await PointsLedgerEntry.filter(user_id=user.id).count() == 1


async def test_the_same_source_may_pay_different_users(db):
    alice, bob = await make_user(), await make_user()

    await award(alice.id, 10, "a1")
    await award(bob.id, 10, "a1")

    assert (await balance_of(alice.id), await balance_of(bob.id)) == (10, 10)


async def test_spend_to_exactly_zero_is_allowed(db):
    user = await make_user()
    await award(user.id, 20, "a1")

    entry = await spend(user.id, 20, "r1")

    assert entry is not None
    assert (entry.delta, entry.balance_after) == (-20, 0)
    assert await balance_of(user.id) == 0


async def test_spend_below_zero_is_refused_and_changes_nothing(db):
    user = await make_user()
    await award(user.id, 20, "a1")

    with pytest.raises(InsufficientPoints) as refused:
        await spend(user.id, 21, "r1")

    assert refused.value.code == "insufficient_points"
    assert refused.value.message == "积分不足"
    assert refused.value.status_code == 409
    assert await balance_of(user.id) == 20
    assert not await PointsLedgerEntry.exists(user_id=user.id, source_id="r1")


async def test_a_repeated_spend_is_charged_once_even_when_the_balance_is_gone(db):
    user = await make_user()
    await award(user.id, 20, "a1")

    first = await spend(user.id, 20, "r1")
    again = await spend(user.id, 20, "r1")

    assert first is not None
    assert again is None
    assert await balance_of(user.id) == 0


async def test_balance_always_equals_the_ledger_sum_and_balance_after_chains(db):
    user = await make_user()
    await award(user.id, 50, "a1")
    await spend(user.id, 20, "r1")
    await award(user.id, 5, "a2")
    await award(user.id, 5, "a2")
    with pytest.raises(InsufficientPoints):
        await spend(user.id, 100, "r2")
    await spend(user.id, 35, "r3")

    assert await balance_of(user.id) == await ledger_sum(user.id) == 0
    entries = await PointsLedgerEntry.filter(user_id=user.id).order_by("id")
    running = 0
    for entry in entries:
        running += entry.delta
        assert entry.balance_after == running
    assert [e.delta for e in entries] == [50, -20, 5, -35]


async def test_unknown_user_is_not_found(db):
    with pytest.raises(NotFound):
        await award(987654, 10, "a1")
    with pytest.raises(NotFound):
        await spend(987654, 10, "r1")
    assert await PointsLedgerEntry.all().count() == 0


@pytest.mark.parametrize("amount", [0, -5])
async def test_amounts_must_be_positive(db, amount):
    user = await make_user()
    with pytest.raises(ValueError):
        await award(user.id, amount, "a1")
    with pytest.raises(ValueError):
        await spend(user.id, amount, "r1")


# --- inside a caller's transaction ---


async def test_inner_functions_refuse_to_run_outside_a_transaction(db):
    user = await make_user()
    with pytest.raises(RuntimeError):
        await ledger.award_in_tx(
            user_id=user.id, amount=5, source_type="activity", source_id="a1", reason="x"
        )
    with pytest.raises(RuntimeError):
        await ledger.spend_in_tx(
            user_id=user.id, amount=5, source_type="reward", source_id="r1", reason="x"
        )
    assert await balance_of(user.id) == 0


async def test_inner_functions_roll_back_with_the_callers_transaction(db):
    user = await make_user()
    await award(user.id, 40, "a0")

    class CallerFailed(Exception):
        pass

    with pytest.raises(CallerFailed):
        async with in_transaction():
            await ledger.award_in_tx(
                user_id=user.id, amount=10, source_type="activity", source_id="a1", reason="x"
            )
            await ledger.spend_in_tx(
                user_id=user.id, amount=30, source_type="reward", source_id="r1", reason="x"
            )
            raise CallerFailed

    assert await balance_of(user.id) == 40
    assert await PointsLedgerEntry.filter(user_id=user.id).count() == 1


async def test_inner_functions_commit_with_the_callers_transaction(db):
    user = await make_user()
    community = await make_community()

    async with in_transaction():
        await Community.filter(id=community.id).update(name="改名后的社区")
        await ledger.award_in_tx(
            user_id=user.id, amount=10, source_type="activity", source_id="a1", reason="x"
        )

    assert await balance_of(user.id) == 10
    assert (await Community.get(id=community.id)).name == "改名后的社区"


async def test_a_refusal_or_a_duplicate_leaves_the_callers_transaction_usable(db):
    """On PostgreSQL a failed statement would abort the whole transaction: the savepoint
    inside the ledger keeps the caller's other work."""
    user = await make_user()

    async with in_transaction():
        await ledger.award_in_tx(
            user_id=user.id, amount=10, source_type="activity", source_id="a1", reason="x"
        )
        duplicate = await ledger.award_in_tx(
            user_id=user.id, amount=10, source_type="activity", source_id="a1", reason="x"
        )
        with pytest.raises(InsufficientPoints):
            await ledger.spend_in_tx(
                user_id=user.id, amount=11, source_type="reward", source_id="r1", reason="x"
            )
        after = await ledger.spend_in_tx(
            user_id=user.id, amount=4, source_type="reward", source_id="r2", reason="x"
        )

    assert duplicate is None
    assert after is not None and after.balance_after == 6
    assert await balance_of(user.id) == await ledger_sum(user.id) == 6
    entries = await PointsLedgerEntry.filter(user_id=user.id).order_by("id")
    assert [e.source_id for e in entries] == ["a1", "r2"]


# --- staff adjustments ---


async def test_staff_adjustment_records_the_actor(db):
    community = await make_community()
    staff = await make_staff(community)
    resident = await make_user(community=community)

    entry = await adjust(actor=staff, user_id=resident.id, delta=15, reason="线下志愿服务补录")

    assert (entry.delta, entry.balance_after, entry.actor_id) == (15, 15, staff.id)
    assert entry.source_type == "adjustment"
    assert entry.reason == "线下志愿服务补录"


async def test_two_adjustments_are_two_changes(db):
    community = await make_community()
    staff = await make_staff(community)
    resident = await make_user(community=community)

    first = await adjust(actor=staff, user_id=resident.id, delta=5, reason="补录")
    second = await adjust(actor=staff, user_id=resident.id, delta=5, reason="补录")

    assert first.source_id != second.source_id
    assert await balance_of(resident.id) == 10


async def test_staff_of_another_community_may_not_adjust(db):
    home, other = await make_community(), await make_community()
    outsider = await make_staff(other)
    resident = await make_user(community=home)

    with pytest.raises(Forbidden):
        await adjust(actor=outsider, user_id=resident.id, delta=5, reason="补录")
    assert await balance_of(resident.id) == 0


async def test_street_admin_may_adjust_anyone(db):
    admin = await make_street_admin()
    drifter = await make_user()  # no community: only a street admin can reach them

    entry = await adjust(actor=admin, user_id=drifter.id, delta=7, reason="补录")

    assert entry.balance_after == 7


async def test_a_negative_adjustment_never_goes_below_zero(db):
    admin = await make_street_admin()
    resident = await make_user()
    await award(resident.id, 5, "a1")

    with pytest.raises(InsufficientPoints):
        await adjust(actor=admin, user_id=resident.id, delta=-6, reason="扣减")

    assert await balance_of(resident.id) == 5


async def test_statement_lists_newest_first(db):
    user = await make_user()
    for n in range(3):
        await award(user.id, n + 1, f"a{n}")

    statement = await ledger.get_statement(user_id=user.id, page=PageRequest(limit=2))

    assert statement.balance == 6
    assert [e.source_id for e in statement.page.items] == ["a2", "a1"]
    assert statement.page.next_cursor is not None
