import pytest

from backend.core.errors import NotFound
from backend.core.pagination import PageRequest
from backend.orgs import service
from tests.factories import make_building, make_community, make_street, make_unit


async def test_lookups_find_what_exists(db):
    street = await make_street(slug="shimen-er-lu")
    community = await make_community(slug="huaqin", street=street)
    building = await make_building(community=community)
    unit = await make_unit(community=community)

    assert (await service.get_street(slug="shimen-er-lu")).id == street.id
    assert (await service.get_community(community_id=community.id)).slug == "huaqin"
    assert (await service.get_community_by_slug(slug="huaqin")).id == community.id
    assert (await service.get_building(building_id=building.id)).id == building.id
    assert (await service.get_unit(unit_id=unit.id)).id == unit.id


async def test_lookups_of_missing_rows_are_not_found(db):
    for lookup in (
        service.get_street(slug="nowhere"),
        service.get_community(community_id=424242),
        service.get_community_by_slug(slug="nowhere"),
        service.get_building(building_id=424242),
        service.get_unit(unit_id=424242),
    ):
        with pytest.raises(NotFound):
            await lookup


async def test_lists_filter_by_community(db):
    home, other = await make_community(), await make_community()
    mine = await make_building(community=home)
    await make_building(community=other)

    page = await service.list_buildings(page=PageRequest(), community_id=home.id)

    assert [b.id for b in page.items] == [mine.id]
    assert page.next_cursor is None
