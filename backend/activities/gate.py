"""The Redis sold-out gate: answers "seats and waitlist are full" without touching the database.

One Redis counter per open activity holds the places left (seats + waitlist). A booking
takes a reservation from it with a Lua script before its database transaction, and gives
it back when that transaction fails for any reason but "sold out". The database stays the
truth: the counter is rebuilt from it whenever it is missing, it expires every few seconds
(so a reservation lost with a crashed process heals), and anything that frees a place
deletes it. Beside it, the set of people who reserved a place (and did not give it back)
lets the gate tell one of them "already booked" rather than "sold out": it is consulted
only once the counter says full, so a stale entry can change that message and nothing else.

Without Redis, with `LINLI_ACTIVITY_GATE=off`, or when Redis errors, every booking simply
goes to the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from redis.commands.core import AsyncScript

from backend.core.clock import clock
from backend.core.config import get_settings
from backend.core.redis import KeyValueUnavailable, RedisKeyValue, get_kv

log = logging.getLogger("linli.activities.gate")

# Short, so a counter that drifted (a crash between reserve and give-back, a rebuild that
# raced a cancellation) is corrected from the database within seconds.
TTL_SECONDS = 10
# Refreshed by every reservation; booking windows open at most weeks ahead.
HOLDERS_TTL_MS = 45 * 24 * 3600 * 1000

UNKNOWN = -1
FULL = 0
RESERVED = 1
HOLDER = 2

# KEYS: counter, holders. ARGV: user id, holders TTL. -1 no counter (rebuild it), 0 full,
# 1 reserved, 2 full and this person holds a place.
_RESERVE = """
local left = redis.call('GET', KEYS[1])
if not left then return -1 end
if tonumber(left) <= 0 then
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 2 end
  return 0
end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""

# ARGV: user id, holders TTL, places left in the database, counter TTL. Sets the counter
# unless another process just did, then reserves as above.
_REBUILD_AND_RESERVE = """
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4], 'NX')
if tonumber(redis.call('GET', KEYS[1])) <= 0 then
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 2 end
  return 0
end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""

# ARGV: user id, 1 to return the place (only to a live counter: a deleted one is rebuilt
# from the truth), 1 to drop the person from the holders.
_GIVE_BACK = """
if ARGV[3] == '1' then redis.call('SREM', KEYS[2], ARGV[1]) end
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCR', KEYS[1]) end
return 1
"""

# ARGV: user id, or 0 when nobody left.
_FORGET = """
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '0' then redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
"""


@dataclass
class Reservation:
    """A place taken from the gate for one booking attempt (give it back if the attempt fails)."""

    activity_id: int
    user_id: int
    outcome: int


def _redis() -> RedisKeyValue | None:
    if get_settings().activity_gate != "on":
        return None
    kv = get_kv()
    return kv if isinstance(kv, RedisKeyValue) else None


_scripts: dict[tuple[int, str], AsyncScript] = {}


async def _run(kv: RedisKeyValue, source: str, activity_id: int, *args: int) -> int:
    # EVALSHA with the script cached per client; redis-py loads it again after a restart.
    script = _scripts.get((id(kv.client), source))
    if script is None:
        script = _scripts[(id(kv.client), source)] = kv.client.register_script(source)
    base = f"{kv.prefix}activity-gate:{activity_id}"
    # Through the breaker: a Redis that does not answer costs one short timeout, after which
    # bookings go straight to the database for a while.
    return int(await kv.call(lambda: script(keys=[base, f"{base}:holders"], args=list(args))))


async def _call(source: str, activity_id: int, *args: int) -> int | None:
    kv = _redis()
    if kv is None:
        return None
    try:
        return await _run(kv, source, activity_id, *args)
    except KeyValueUnavailable:
        return None  # logged once by the breaker, not per booking
    except Exception:
        log.warning("sold-out gate unavailable, bookings go to the database", exc_info=True)
        return None


async def reserve(activity_id: int, user_id: int) -> Reservation | None:
    """Take a place from the counter; None when there is no gate (or Redis failed)."""
    outcome = await _call(_RESERVE, activity_id, user_id, HOLDERS_TTL_MS)
    return None if outcome is None else Reservation(activity_id, user_id, outcome)


async def rebuild_and_reserve(
    activity_id: int, user_id: int, *, places_left: int, closes_at: datetime
) -> Reservation | None:
    """Create the counter from the database's `places_left` (unless present) and reserve."""
    ttl_ms = int(min(TTL_SECONDS, (closes_at - clock.now()).total_seconds()) * 1000)
    if ttl_ms <= 0:
        return None
    outcome = await _call(
        _REBUILD_AND_RESERVE, activity_id, user_id, HOLDERS_TTL_MS, max(0, places_left), ttl_ms
    )
    return None if outcome is None else Reservation(activity_id, user_id, outcome)


async def give_back(
    reservation: Reservation | None, *, place_exists: bool = True, holds_place: bool = False
) -> None:
    """Undo a reservation whose database step failed: the place returns to the counter unless
    the database said it did not exist, and the person leaves the holders unless they turned
    out to hold a place already."""
    if reservation is not None and reservation.outcome == RESERVED:
        await _call(
            _GIVE_BACK,
            reservation.activity_id,
            reservation.user_id,
            int(place_exists),
            int(not holds_place),
        )


async def forget(activity_id: int, *, user_id: int | None = None) -> None:
    """Drop the counter after places were freed or changed (and the person who left, if any);
    the next booking rebuilds it from the database."""
    await _call(_FORGET, activity_id, user_id or 0)
