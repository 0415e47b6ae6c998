"""TEST ONLY: the read-check-write claim, for the control case of the claim race test.

With LINLI_TEST_UNGUARDED_CLAIM=1 (honoured only when LINLI_ENV=dev, refused in prod) a
claim trusts the status it read before its transaction and writes without naming it — the
race the guarded UPDATE of backend.wishes.service exists to prevent. The control test runs
its burst against this and asserts that one wish gets several claimers.
"""

from __future__ import annotations

from typing import Any

from backend.wishes.models import Wish


async def take_wish(wish_id: int, values: dict[str, Any]) -> int:
    """Claim the wish whatever its status is by now."""
    return await Wish.filter(id=wish_id).update(**values)
