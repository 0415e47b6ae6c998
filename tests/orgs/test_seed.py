"""`linli seed-demo`: the demo street and personas, and running it twice changes nothing."""

import asyncio

import pytest

from backend.accounts import service as accounts_service
from backend.accounts.models import RoleGrant, User, WechatIdentity
from backend.core.security import blind_index, decrypt_field
from backend.orgs.models import Building, Community, Street, Unit
from backend.points.models import PointsLedgerEntry
from backend.seed import PERSONAS, run_seed_demo
from tests.conftest import linli_env, reset_postgres, run_linli
from tests.seeding import make_empty_schema, open_database

SEEDED_MODELS = (
    Street,
    Community,
    Building,
    Unit,
    User,
    WechatIdentity,
    RoleGrant,
    PointsLedgerEntry,
)


@pytest.fixture
async def empty_schema(settings) -> None:
    """An empty schema the seed can connect to on its own (it opens and closes the database)."""
    await make_empty_schema(settings)


async def snapshot(settings) -> dict[str, list[dict]]:
    async with open_database(settings):
        return {
            model.__name__: await model.all().order_by("id").values() for model in SEEDED_MODELS
        }


async def test_seed_twice_changes_nothing(settings, empty_schema):
    summary = await run_seed_demo(settings)
    first = await snapshot(settings)
    await run_seed_demo(settings)
    second = await snapshot(settings)

    assert "石门二路街道" in summary
    assert second == first
    assert all(first[name] for name in ("Street", "Community", "Building", "Unit"))
    assert len(first["User"]) == len(PERSONAS)


async def test_seed_keeps_a_demo_users_own_edits(settings, empty_schema):
    await run_seed_demo(settings)
    async with open_database(settings):
        await User.filter(persona="resident").update(nickname="王阿姨（已改名）")

    await run_seed_demo(settings)

    async with open_database(settings):
        assert (await User.get(persona="resident")).nickname == "王阿姨（已改名）"


async def test_seed_makes_the_personas_the_demo_needs(settings, empty_schema):
    await run_seed_demo(settings)
    async with open_database(settings):
        street = await Street.get(slug="shimen-er-lu")
        assert street.name == "石门二路街道"
        assert await Community.filter(street=street).count() >= 4
        users = {u.persona: u for u in await User.filter(persona__isnull=False)}
        assert set(users) == {"resident", "party_member", "worker", "staff", "street_admin"}

        roles = {key: await accounts_service.user_roles(user) for key, user in users.items()}
        assert roles["resident"] == ["resident"]
        assert "party_member" in roles["party_member"]
        assert users["worker"].building_id is not None
        assert "staff" in roles["staff"]
        assert "street_admin" in roles["street_admin"]
        # Staff and resident share a community, so the demo staff member can act for her.
        assert users["staff"].community_id == users["resident"].community_id
        assert await accounts_service.is_staff_of(users["staff"], users["resident"].community_id)
        party_grant = await RoleGrant.get(user_id=users["party_member"].id, role="party_member")
        assert party_grant.scope_key == f"c{users['party_member'].community_id}"
        admin_grant = await RoleGrant.get(user_id=users["street_admin"].id)
        assert (admin_grant.scope_key, admin_grant.community_id) == ("street", None)

        for key, user in users.items():
            identity = await WechatIdentity.get(user_id=user.id)
            assert (identity.kind, identity.app_id, identity.openid) == (
                "official_account",
                settings.oa_appid,
                f"demo-{key}",
            )
            phone = decrypt_field(user.phone_encrypted)
            assert phone and user.phone_index == blind_index(phone)
            assert user.nickname

        resident = users["resident"]
        deltas = await PointsLedgerEntry.filter(user_id=resident.id).values_list("delta", flat=True)
        assert len(deltas) >= 2
        assert resident.points_balance == sum(deltas) > 0


async def test_demo_personas_can_be_granted_by_openid(settings, empty_schema):
    await run_seed_demo(settings)

    message = await accounts_service.run_grant_cli(
        settings=settings, openid="demo-resident", role="staff", community_slug="huaqin"
    )

    assert "王阿姨" in message


@pytest.mark.slow
def test_linli_seed_demo_twice_on_a_migrated_database(settings):
    """The real path: `linli migrate`, then `linli seed-demo` twice, compared by row counts."""
    if not settings.is_sqlite:
        reset_postgres(settings.database_url)
    env = linli_env()
    assert run_linli("migrate", env=env).returncode == 0
    first = run_linli("seed-demo", env=env)
    assert first.returncode == 0, first.stderr
    assert "石门二路街道" in first.stdout
    after_first = _count_rows(settings)
    again = run_linli("seed-demo", env=env)
    assert again.returncode == 0, again.stderr

    assert _count_rows(settings) == after_first
    assert after_first["User"] == len(PERSONAS)


def _count_rows(settings) -> dict[str, int]:
    async def count() -> dict[str, int]:
        async with open_database(settings):
            return {model.__name__: await model.all().count() for model in SEEDED_MODELS}

    return asyncio.run(count())
