"""The range of row ids. Org tables (streets, communities, buildings, units) have INT keys,
everything else BIGINT. A number outside the range cannot name a row and would overflow the
database driver (a 500), so it is refused at the edge or treated as "not found" before any
query runs."""

from __future__ import annotations

from backend.core.errors import Invalid

MAX_ORG_ID = 2**31 - 1
MAX_ID = 2**63 - 1
# Every other integer an API body accepts fits the 32-bit column it lands in.
INT32 = 2**31 - 1


def may_exist(value: object, largest: int = MAX_ID) -> bool:
    """Whether `value` could be the key of a row (an int in 1..largest)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= largest


def optional_id(text: str | None, *, field: str = "id", largest: int = MAX_ID) -> int | None:
    """An id typed into a form or a query string: None when blank, Invalid when not an id."""
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or not may_exist(int(text), largest):
        raise Invalid("编号不正确", fields={field: "应为编号"})
    return int(text)


def optional_org_id(text: str | None, *, field: str = "community_id") -> int | None:
    """`optional_id` for a street, community, building or unit (an INT key)."""
    return optional_id(text, field=field, largest=MAX_ORG_ID)
