"""An org id typed into a page's address beyond what the INT columns hold gets a page (the
error, or nothing found), never a database overflow (a 500 on PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import make_community, make_user, session_cookies

TOO_BIG = str(2**31)


@pytest.mark.parametrize(
    "path",
    [
        f"/h5/wishes?community_id={TOO_BIG}",
        f"/h5/wishes/review?community_id={TOO_BIG}",
        f"/h5/wishes/export.xlsx?community_id={TOO_BIG}",
        f"/h5/points/rewards?community_id={TOO_BIG}",
        f"/h5/points/leaderboard?community_id={TOO_BIG}",
        f"/h5/points/staff/rewards?community_id={TOO_BIG}",
        f"/h5/points/staff/leaderboard?community_id={TOO_BIG}",
    ],
)
async def test_an_org_id_out_of_range_is_a_clear_error(client: httpx.AsyncClient, path: str):
    community = await make_community()
    staff = await make_user(community=community, roles=["staff", "street_admin"])
    for name, value in session_cookies(staff).items():
        client.cookies.set(name, value)
    page = await client.get(path)
    assert page.status_code < 500, (path, page.status_code)
