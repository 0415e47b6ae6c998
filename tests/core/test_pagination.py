import pytest

from backend.core.errors import Invalid
from backend.core.pagination import MAX_LIMIT, PageRequest, decode_cursor, encode_cursor, paginate
from backend.orgs.models import Community
from tests.factories import make_community


@pytest.mark.parametrize("descending", [False, True])
def test_cursor_round_trip(descending):
    for last_id in (1, 42, 2**62):
        cursor = encode_cursor(last_id, descending=descending)
        assert decode_cursor(cursor, descending=descending) == last_id


@pytest.mark.parametrize(
    "cursor", ["", "=", "abc", "YQ", "YS0x", "eDE", "YTEyMzQ1Njc4OTAxMjM0NTY3ODkw"]
)
def test_bad_cursors_are_invalid(cursor):
    with pytest.raises(Invalid) as refused:
        decode_cursor(cursor, descending=False)
    assert refused.value.fields == {"cursor": "无效的分页游标"}


def test_a_cursor_only_fits_the_order_it_came_from():
    with pytest.raises(Invalid):
        decode_cursor(encode_cursor(5, descending=True), descending=False)


async def test_paginate_walks_both_directions_without_gaps(db):
    ids = [(await make_community()).id for _ in range(7)]

    for descending, expected in ((False, ids), (True, ids[::-1])):
        seen, cursor = [], None
        while True:
            page = await paginate(
                Community.all(), PageRequest(limit=3, cursor=cursor), descending=descending
            )
            seen += [c.id for c in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected


async def test_paginate_clamps_the_limit(db):
    for _ in range(3):
        await make_community()
    page = await paginate(Community.all(), PageRequest(limit=MAX_LIMIT * 10))
    assert len(page.items) == 3
