import pytest

from backend.core.pagination import encode_cursor
from tests.factories import auth_headers, make_building, make_community, make_unit, make_user

COMMUNITIES = "/api/v1/communities"
BUILDINGS = "/api/v1/buildings"
UNITS = "/api/v1/units"


def error_code(response) -> str:
    return response.json()["error"]["code"]


async def test_communities_are_public(client):
    community = await make_community(slug="xinfukangli", name="新福康里居民区")

    response = await client.get(COMMUNITIES)

    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "id": community.id,
                "slug": "xinfukangli",
                "name": "新福康里居民区",
                "contact_name": "",
                "contact_phone": "",
            }
        ],
        "next_cursor": None,
    }


async def test_buildings_are_public_and_filter_by_community(client):
    home, other = await make_community(), await make_community()
    tower = await make_building(community=home, name="梅龙镇广场")
    await make_building(community=other)
    await make_building()  # not attached to any community

    everything = (await client.get(BUILDINGS)).json()
    filtered = (await client.get(BUILDINGS, params={"community_id": home.id})).json()

    assert len(everything["items"]) == 3
    assert filtered["items"] == [
        {
            "id": tower.id,
            "slug": tower.slug,
            "name": "梅龙镇广场",
            "community_id": home.id,
            "address": "",
        }
    ]


async def test_units_are_public_and_filter_by_community(client):
    home = await make_community()
    school = await make_unit(community=home, name="邻里实验小学")
    await make_unit()

    filtered = (await client.get(UNITS, params={"community_id": home.id})).json()

    assert filtered == {
        "items": [
            {"id": school.id, "slug": school.slug, "name": "邻里实验小学", "community_id": home.id}
        ],
        "next_cursor": None,
    }


async def test_a_login_is_not_needed_but_does_not_hurt(client):
    await make_community()
    user = await make_user()

    response = await client.get(COMMUNITIES, headers=auth_headers(user))

    assert response.status_code == 200


@pytest.mark.parametrize("path", [COMMUNITIES, BUILDINGS, UNITS])
async def test_lists_page_with_a_cursor(client, path):
    community = await make_community()
    for _ in range(24):
        if path == BUILDINGS:
            await make_building(community=community)
        elif path == UNITS:
            await make_unit(community=community)
        else:
            await make_community()
    expected = 25 if path == COMMUNITIES else 24

    first = (await client.get(path)).json()
    second = (await client.get(path, params={"cursor": first["next_cursor"]})).json()

    assert len(first["items"]) == 20  # the default page size
    assert first["next_cursor"]
    assert len(second["items"]) == expected - 20
    assert second["next_cursor"] is None
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == sorted(set(ids))


async def test_limit_is_honoured(client):
    for _ in range(3):
        await make_community()

    body = (await client.get(COMMUNITIES, params={"limit": 2})).json()

    assert len(body["items"]) == 2
    assert body["next_cursor"] is not None


async def test_a_page_that_ends_exactly_has_no_next_cursor(client):
    for _ in range(2):
        await make_community()

    body = (await client.get(COMMUNITIES, params={"limit": 2})).json()

    assert len(body["items"]) == 2
    assert body["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "!!!"}, "cursor"),
        ({"cursor": "x" * 65}, "cursor"),
        ({"cursor": "ZDU"}, "cursor"),  # a newest-first cursor on an oldest-first list
        ({"cursor": encode_cursor(2**31, descending=False)}, "cursor"),  # past any 32-bit id
        ({"community_id": 2**31}, "community_id"),
        ({"community_id": 0}, "community_id"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"community_id": "abc"}, "community_id"),
    ],
)
async def test_bad_list_parameters_are_invalid(client, params, field):
    for path in (COMMUNITIES, BUILDINGS, UNITS):
        if field == "community_id" and path == COMMUNITIES:
            continue
        response = await client.get(path, params=params)
        assert response.status_code == 422, (path, response.text)
        assert error_code(response) == "invalid"
        assert field in response.json()["error"]["fields"]


async def test_openapi_documents_the_lists(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (COMMUNITIES, BUILDINGS, UNITS):
        operation = paths[path]["get"]
        assert "422" in operation["responses"]
        assert {p["name"] for p in operation["parameters"]} >= {"limit", "cursor"}
