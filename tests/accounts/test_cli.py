"""`linli grant OPENID ROLE [--community SLUG]` as an operator runs it: a subprocess."""

import pytest

from backend.accounts import service
from backend.accounts.models import RoleGrant
from tests.conftest import linli_env, run_linli
from tests.factories import make_community, make_user

pytestmark = pytest.mark.slow


async def test_grant_staff_and_street_admin(db):
    community = await make_community(slug="shimen", name="石门社区")
    user = await make_user(nickname="李社工", openid="openid-li")

    staff = run_linli("grant", "openid-li", "staff", "--community", "shimen", env=linli_env())
    admin = run_linli("grant", "openid-li", "street_admin", env=linli_env())

    assert staff.returncode == 0, staff.stderr
    for part in ("李社工", "社区工作人员", "石门社区"):
        assert part in staff.stdout
    assert admin.returncode == 0, admin.stderr
    assert "街道管理员" in admin.stdout
    assert await service.is_staff_of(user, community.id)
    assert await service.user_roles(user) == ["staff", "street_admin"]

    again = run_linli("grant", "openid-li", "staff", "--community", "shimen", env=linli_env())
    assert again.returncode == 0
    assert await RoleGrant.filter(user_id=user.id).count() == 2


async def test_grant_refusals_explain_themselves(db):
    await make_community(slug="shimen")
    user = await make_user(openid="openid-known")

    cases = [
        (("grant", "openid-unknown", "street_admin"), "找不到 openid"),
        (("grant", "openid-known", "staff", "--community", "nowhere"), "找不到标识为 nowhere"),
        (("grant", "openid-known", "staff"), "--community"),
        (("grant", "openid-known", "street_admin", "--community", "shimen"), "去掉 --community"),
    ]
    for args, message in cases:
        result = run_linli(*args, env=linli_env())
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr

    # party_member comes from the party-member approval, never from the command line
    party = run_linli(
        "grant", "openid-known", "party_member", "--community", "shimen", env=linli_env()
    )
    assert party.returncode == 2
    assert not await RoleGrant.exists(user_id=user.id)
