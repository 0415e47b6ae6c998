"""A hypothesis state machine over award / spend / adjust / redeem / verify / cancel / expire.

A small model of the rules (balances, batches by expiry date, cap tallies, stock, per-user
holdings, redemption states) predicts every step, and after each step the database must
agree with it and with the invariants: balance = sum of the ledger = sum of the batches
≥ 0, stock ≥ 0, live redemptions per user within the reward's limit, and no source paid
twice. Runs on SQLite in memory in one event loop; tables are emptied between examples.
1,000 examples under CI=true, fewer locally.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.accounts.models import User
from backend.core.clock import clock
from backend.core.db import close_db, init_db
from backend.core.errors import DomainError
from backend.core.redis import close_kv, init_kv
from backend.orgs.models import Community, Street
from backend.points import ledger, rewards, rules
from backend.points.exceptions import InsufficientPoints
from backend.points.models import (
    EarningTally,
    PointsBatch,
    PointsLedgerEntry,
    Redemption,
    Reward,
    RewardHolding,
)
from tests.conftest import IN_CI
from tests.factories.points import adjust, make_reward, make_rule

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Near New Year, so a few hours later points go into the next year's batch.
START = datetime(2025, 12, 31, 18, tzinfo=SHANGHAI)
EXAMPLES = 1000 if IN_CI else 60
STEPS = 14
EVENT = "activity_attended"
PICKUP_DAYS = 3
# Every table the machine writes, children first.
TABLES = (
    "points_batch_use",
    "points_redemption",
    "points_reward_holding",
    "points_ledger",
    "points_batch",
    "points_tally",
    "points_rule",
    "points_reward",
    "points_preference",
    "outbox_message",
    "role_grant",
    "wechat_identity",
    '"user"',
    "community",
    "street",
)

_loop: asyncio.AbstractEventLoop | None = None


def run(coro):
    assert _loop is not None
    return _loop.run_until_complete(coro)


async def _empty_tables() -> None:
    conn = connections.get("default")
    for table in TABLES:
        await conn.execute_script(f"DELETE FROM {table}")


class PointsMachine(RuleBasedStateMachine):
    redemptions = Bundle("redemptions")

    def __init__(self) -> None:
        super().__init__()
        run(_empty_tables())
        clock.set(START)
        self.users: list[int] = []
        self.staff_id = 0
        self.balance: dict[int, int] = {}
        self.batches: dict[int, dict[datetime, int]] = {}
        self.uses: dict[str, list[tuple[datetime, int]]] = {}
        self.paid: set[tuple[int, str]] = set()
        self.spent: set[tuple[int, str]] = set()
        self.tally: dict[tuple[int, str], int] = defaultdict(int)
        self.rule = (10, None, None)
        self.rewards: dict[int, dict] = {}
        self.held: Counter[tuple[int, int]] = Counter()
        self.states: dict[int, dict] = {}

    # --- setting up one example ---

    @initialize(
        points=st.integers(1, 20),
        caps=st.sampled_from([(None, None), (15, None), (None, 40), (25, 60)]),
        offers=st.lists(
            st.tuples(st.integers(1, 40), st.integers(0, 3), st.integers(1, 2)),
            min_size=1,
            max_size=2,
        ),
        starting=st.lists(st.integers(0, 60), min_size=3, max_size=3),
    )
    def setup(self, points, caps, offers, starting) -> None:
        async def make() -> None:
            street = await Street.create(slug="s", name="街道")
            community = await Community.create(street=street, slug="c", name="社区")
            staff = await User.create(nickname="社工", community=community)
            admin = await User.create(nickname="主任")
            from backend.accounts import service as accounts_service

            await accounts_service.grant_role(
                actor=None, user_id=staff.id, role="staff", community_id=community.id
            )
            await accounts_service.grant_role(
                actor=None, user_id=admin.id, role="street_admin", community_id=None
            )
            await make_rule(
                actor=admin,
                event_type=EVENT,
                points=points,
                daily_cap=caps[0],
                monthly_cap=caps[1],
            )
            self.staff_id = staff.id
            for n, amount in enumerate(starting):
                user = await User.create(nickname=f"居民{n}", community=community)
                self.users.append(user.id)
                self.balance[user.id] = 0
                self.batches[user.id] = {}
                if amount:
                    await ledger.award(
                        user_id=user.id,
                        amount=amount,
                        source_type="seed",
                        source_id="0",
                        reason="初始",
                    )
                    self._credit(user.id, amount)
            for cost, stock, limit in offers:
                reward = await make_reward(
                    actor=staff,
                    community_id=community.id,
                    title="礼品",
                    cost=cost,
                    stock=stock,
                    per_user_limit=limit,
                    pickup_days=PICKUP_DAYS,
                )
                self.rewards[reward.id] = {"cost": cost, "stock": stock, "limit": limit}

        run(make())
        self.rule = (points, caps[0], caps[1])

    # --- the model ---

    def _expire_user(self, uid: int, batches: dict[datetime, int]) -> int:
        """Zero the user's due batches in `batches`; returns what expired."""
        gone = 0
        for expires_at, left in batches.items():
            if expires_at <= clock.now() and left > 0:
                gone += left
                batches[expires_at] = 0
        return gone

    def _debit(self, uid: int, amount: int) -> list[tuple[datetime, int]] | None:
        """Expire, then take `amount` oldest first; None (and no change) when it is short."""
        batches = dict(self.batches[uid])
        balance = self.balance[uid] - self._expire_user(uid, batches)
        if balance < amount:
            return None
        taken = []
        for expires_at in sorted(batches):
            take = min(batches[expires_at], amount)
            if take:
                batches[expires_at] -= take
                taken.append((expires_at, take))
                amount -= take
        self.batches[uid], self.balance[uid] = batches, balance - sum(t for _, t in taken)
        return taken

    def _credit(self, uid: int, amount: int) -> None:
        expires_at = ledger.expiry_for(clock.now())
        self.batches[uid][expires_at] = self.batches[uid].get(expires_at, 0) + amount
        self.balance[uid] += amount

    def _refund(self, uid: int, source: str) -> None:
        for expires_at, amount in self.uses.pop(source):
            self.batches[uid][expires_at] += amount
            self.balance[uid] += amount

    def _close(self, redemption_id: int, status: str) -> None:
        state = self.states[redemption_id]
        state["status"] = status
        self.held[(state["reward"], state["user"])] -= 1
        self.rewards[state["reward"]]["stock"] += 1
        self._refund(state["user"], f"redeem:{redemption_id}")

    # --- steps ---

    @rule(who=st.integers(0, 2), source=st.integers(0, 5), quantity=st.integers(1, 4))
    def award(self, who, source, quantity) -> None:
        uid = self.users[who]
        points, daily_cap, monthly_cap = self.rule
        entry = run(
            rules.award_by_rule(
                user_id=uid, event_type=EVENT, source_id=f"s{source}", quantity=quantity
            )
        )
        if (uid, f"s{source}") in self.paid:
            assert entry is None
            return
        local = clock.now().astimezone(SHANGHAI)
        day, month = (uid, f"{local:%Y-%m-%d}"), (uid, f"{local:%Y-%m}")
        grant = points * quantity
        if daily_cap is not None:
            grant = min(grant, daily_cap - self.tally[day])
        if monthly_cap is not None:
            grant = min(grant, monthly_cap - self.tally[month])
        assert entry is not None and entry.delta == grant
        self.paid.add((uid, f"s{source}"))
        self.tally[day] += grant
        self.tally[month] += grant
        if grant:
            self._credit(uid, grant)

    @rule(who=st.integers(0, 2), amount=st.integers(1, 60), source=st.integers(0, 3))
    def spend(self, who, amount, source) -> None:
        uid = self.users[who]
        key = f"spend:{source}"
        try:
            entry = run(
                ledger.spend(
                    user_id=uid, amount=amount, source_type="shop", source_id=key, reason="消费"
                )
            )
        except InsufficientPoints:
            assert (uid, key) not in self.spent
            assert self._debit(uid, amount) is None
            return
        if (uid, key) in self.spent:
            assert entry is None
            self.balance[uid] -= self._expire_user(uid, self.batches[uid])
            return
        taken = self._debit(uid, amount)
        assert taken is not None and entry is not None
        self.spent.add((uid, key))

    @rule(who=st.integers(0, 2), delta=st.integers(-30, 30).filter(bool))
    def adjust(self, who, delta) -> None:
        uid = self.users[who]
        staff = run(User.get(id=self.staff_id))
        try:
            run(adjust(actor=staff, user_id=uid, delta=delta, reason="调整"))
        except InsufficientPoints:
            assert delta < 0 and self._debit(uid, -delta) is None
            return
        if delta > 0:
            self._credit(uid, delta)
        else:
            assert self._debit(uid, -delta) is not None

    @rule(target=redemptions, who=st.integers(0, 2), pick=st.integers(0, 1))
    def redeem(self, who, pick):
        uid = self.users[who]
        reward_id = sorted(self.rewards)[pick % len(self.rewards)]
        offer = self.rewards[reward_id]
        user = run(User.get(id=uid))
        try:
            redemption = run(rewards.redeem_reward(user=user, reward_id=reward_id))
        except DomainError as refused:
            if offer["stock"] <= 0:
                expected = "out_of_stock"
            elif self.held[(reward_id, uid)] >= offer["limit"]:
                expected = "limit_reached"
            else:
                assert self._debit(uid, offer["cost"]) is None
                expected = "insufficient_points"
            assert refused.code == expected
            return multiple()
        assert offer["stock"] > 0 and self.held[(reward_id, uid)] < offer["limit"]
        taken = self._debit(uid, offer["cost"])
        assert taken is not None
        self.uses[f"redeem:{redemption.id}"] = taken
        offer["stock"] -= 1
        self.held[(reward_id, uid)] += 1
        self.states[redemption.id] = {
            "user": uid,
            "reward": reward_id,
            "status": "pending_pickup",
            "expires_at": clock.now() + timedelta(days=PICKUP_DAYS),
        }
        return redemption.id

    @rule(redemption_id=redemptions)
    def verify(self, redemption_id) -> None:
        state = self.states[redemption_id]
        code = run(Redemption.get(id=redemption_id).values_list("pickup_code", flat=True))
        staff = run(User.get(id=self.staff_id))
        try:
            run(rewards.verify_redemption(actor=staff, pickup_code=code))
        except DomainError as refused:
            assert state["status"] != "pending_pickup" or state["expires_at"] <= clock.now()
            assert refused.code in {
                "already_fulfilled",
                "redemption_cancelled",
                "redemption_expired",
            }
            return
        assert state["status"] == "pending_pickup" and state["expires_at"] > clock.now()
        state["status"] = "fulfilled"

    @rule(redemption_id=consumes(redemptions))
    def cancel(self, redemption_id) -> None:
        staff = run(User.get(id=self.staff_id))
        try:
            run(rewards.cancel_redemption(actor=staff, redemption_id=redemption_id, reason="取消"))
        except DomainError:
            assert self.states[redemption_id]["status"] != "pending_pickup"
            return
        assert self.states[redemption_id]["status"] == "pending_pickup"
        self._close(redemption_id, "cancelled")

    @rule(hours=st.sampled_from([1, 20, 30, 24 * 3, 24 * 40, 24 * 200, 24 * 400]))
    def time_passes_and_the_jobs_run(self, hours) -> None:
        clock.advance(timedelta(hours=hours))
        run(ledger.expire_due_batches())
        for uid in self.users:
            self.balance[uid] -= self._expire_user(uid, self.batches[uid])
        run(rewards.expire_unclaimed_redemptions())
        for redemption_id, state in self.states.items():
            if state["status"] == "pending_pickup" and state["expires_at"] <= clock.now():
                self._close(redemption_id, "expired")

    # --- what must hold after every step ---

    @invariant()
    def the_books_balance(self) -> None:
        if not self.users:
            return

        async def read():
            balances = dict(
                await User.filter(id__in=self.users).values_list("id", "points_balance")
            )
            ledger = await PointsLedgerEntry.all().values_list(
                "user_id", "delta", "source_type", "source_id"
            )
            batches = await PointsBatch.all().values_list("user_id", "expires_at", "remaining")
            tallies = await EarningTally.all().values_list("period", "earned")
            return balances, ledger, batches, tallies

        balances, ledger, batches, tallies = run(read())
        sums: Counter[int] = Counter()
        for uid, delta, _, _ in ledger:
            sums[uid] += delta
        in_batches: dict[int, dict[datetime, int]] = defaultdict(dict)
        for uid, expires_at, remaining in batches:
            assert remaining >= 0
            if remaining:
                in_batches[uid][expires_at] = remaining
        for uid in self.users:
            assert balances[uid] == sums[uid] == sum(in_batches[uid].values()) >= 0
            assert balances[uid] == self.balance[uid]
            assert in_batches[uid] == {k: v for k, v in self.batches[uid].items() if v}
        sources = Counter((uid, kind, source) for uid, _, kind, source in ledger)
        assert max(sources.values(), default=1) == 1, "a source was paid twice"
        awarded = {(uid, source) for uid, _, kind, source in ledger if kind == EVENT}
        assert awarded == self.paid
        _, daily_cap, monthly_cap = self.rule
        for period, earned in tallies:
            cap = daily_cap if len(period) == 10 else monthly_cap
            assert cap is None or earned <= cap

    @invariant()
    def stock_and_limits_hold(self) -> None:
        if not self.rewards:
            return

        async def read():
            stock = dict(await Reward.all().values_list("id", "stock"))
            held = await RewardHolding.all().values_list("reward_id", "user_id", "count")
            states = dict(await Redemption.all().values_list("id", "status"))
            return stock, held, states

        stock, held, states = run(read())
        for reward_id, offer in self.rewards.items():
            assert stock[reward_id] == offer["stock"] >= 0
        live = Counter(
            (s["reward"], s["user"])
            for s in self.states.values()
            if s["status"] in ("pending_pickup", "fulfilled")
        )
        for reward_id, uid, count in held:
            assert count == live[(reward_id, uid)] <= self.rewards[reward_id]["limit"]
        assert states == {rid: s["status"] for rid, s in self.states.items()}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_points_rules_hold_whatever_happens(settings_for_machine) -> None:
    run_state_machine_as_test(
        PointsMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


@pytest.fixture
def settings_for_machine(settings):
    """One in-memory SQLite database and one event loop for every example of the machine."""
    global _loop
    _loop = asyncio.new_event_loop()
    EXECUTOR_CACHE.clear()

    async def start() -> None:
        await init_db(settings, database_url="sqlite://:memory:")
        await Tortoise.generate_schemas()
        init_kv(settings)

    async def stop() -> None:
        await close_db()
        await close_kv()

    _loop.run_until_complete(start())
    try:
        yield settings
    finally:
        _loop.run_until_complete(stop())
        _loop.close()
        _loop = None
