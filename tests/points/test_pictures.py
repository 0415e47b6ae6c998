"""Reward pictures: staff upload, replace and remove them; anyone fetches them from this
site, and a reward's image_url names the uploaded picture (versioned) before any external
address."""

from datetime import timedelta

import pytest

from backend.core.clock import clock
from backend.core.errors import Forbidden, Invalid, NotFound
from backend.core.images import MAX_IMAGE_BYTES
from backend.core.pagination import PageRequest
from backend.points import ledger, rewards
from backend.points.models import RewardPicture
from backend.points.views import image_url
from tests.factories import auth_headers, make_community, make_staff, make_street_admin, make_user
from tests.factories.points import edit_reward, make_reward

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32
EXTERNAL = "https://img.example.cn/bag.jpg"
REWARDS = "/api/v1/rewards"


@pytest.fixture
async def shop(db):
    community = await make_community()
    staff = await make_staff(community)
    bag = await make_reward(
        actor=staff, community_id=community.id, title="环保购物袋", cost=30, stock=5
    )
    return {"community": community, "staff": staff, "bag": bag}


async def stored() -> list[tuple[int, str, bytes]]:
    return [
        (p.reward_id, p.content_type, bytes(p.content))
        for p in await RewardPicture.all().order_by("id")
    ]


# --- the service ---


async def test_staff_upload_replace_and_remove_a_picture(shop):
    staff, bag = shop["staff"], shop["bag"]
    await edit_reward(actor=staff, reward_id=bag.id, changes={"image_url": EXTERNAL})

    shown = await rewards.set_picture(actor=staff, reward_id=bag.id, content=PNG)

    first = image_url(shown)
    assert first.startswith(f"/api/v1/rewards/{bag.id}/picture?v=")
    assert await stored() == [(bag.id, "image/png", PNG)]
    picture = await rewards.get_picture(reward_id=bag.id)
    assert (picture.content_type, bytes(picture.content)) == ("image/png", PNG)

    clock.advance(timedelta(seconds=5))
    replaced = await rewards.set_picture(actor=staff, reward_id=bag.id, content=JPEG)
    assert await stored() == [(bag.id, "image/jpeg", JPEG)]
    assert image_url(replaced) != first  # a new address, so no cache shows the old one

    removed = await rewards.remove_picture(actor=staff, reward_id=bag.id)
    assert image_url(removed) == EXTERNAL  # the mini-program's address again
    assert await stored() == []
    with pytest.raises(NotFound):
        await rewards.get_picture(reward_id=bag.id)
    again = await rewards.remove_picture(actor=staff, reward_id=bag.id)
    assert image_url(again) == EXTERNAL


async def test_without_any_picture_image_url_is_empty(shop):
    assert image_url(await rewards.get_reward(reward_id=shop["bag"].id)) == ""


async def test_the_type_comes_from_the_content(shop):
    staff, bag = shop["staff"], shop["bag"]
    for content, content_type in ((WEBP, "image/webp"), (JPEG, "image/jpeg"), (PNG, "image/png")):
        await rewards.set_picture(actor=staff, reward_id=bag.id, content=content)
        assert await stored() == [(bag.id, content_type, content)]


async def test_staff_of_the_community_and_street_admins_may_others_may_not(shop):
    bag, community = shop["bag"], shop["community"]
    admin = await make_street_admin()
    await rewards.set_picture(actor=admin, reward_id=bag.id, content=PNG)
    assert len(await stored()) == 1

    outsiders = (
        await make_staff(await make_community()),
        await make_user(community=community),
        await make_user(community=community, roles=["party_member"]),
    )
    for outsider in outsiders:
        with pytest.raises(Forbidden):
            await rewards.set_picture(actor=outsider, reward_id=bag.id, content=JPEG)
        with pytest.raises(Forbidden):
            await rewards.remove_picture(actor=outsider, reward_id=bag.id)
    assert await stored() == [(bag.id, "image/png", PNG)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"GIF89a" + b"\x00" * 16, "礼品图片须为 JPG、PNG 或 WebP 图片"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "礼品图片须为 JPG、PNG 或 WebP 图片"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "礼品图片须为 JPG、PNG 或 WebP 图片"),
        (b"", "礼品图片须为 JPG、PNG 或 WebP 图片"),
        (PNG[:8] + b"\x00" * MAX_IMAGE_BYTES, "礼品图片不能超过 2 MB"),
    ],
)
async def test_a_bad_file_is_refused_and_the_old_picture_stays(shop, content, reason):
    staff, bag = shop["staff"], shop["bag"]
    await rewards.set_picture(actor=staff, reward_id=bag.id, content=PNG)

    with pytest.raises(Invalid) as refused:
        await rewards.set_picture(actor=staff, reward_id=bag.id, content=content)

    assert refused.value.fields == {"picture": reason}
    assert await stored() == [(bag.id, "image/png", PNG)]


async def test_a_missing_reward_is_not_found(shop):
    with pytest.raises(NotFound):
        await rewards.set_picture(actor=shop["staff"], reward_id=10**9, content=PNG)
    with pytest.raises(NotFound):
        await rewards.remove_picture(actor=shop["staff"], reward_id=10**9)
    with pytest.raises(NotFound):
        await rewards.get_picture(reward_id=10**9)
    assert await stored() == []


async def test_a_typed_same_site_address_is_refused(shop):
    # Only uploads make same-site addresses: a typed one would be fetched by every visitor.
    for url in ("/h5/logout", "//evil.example/x.png", "http://img.example.cn/x.png"):
        with pytest.raises(Invalid) as refused:
            await edit_reward(
                actor=shop["staff"], reward_id=shop["bag"].id, changes={"image_url": url}
            )
        assert set(refused.value.fields) == {"image_url"}


async def test_lists_and_pickup_codes_know_each_reward_s_picture(shop):
    staff, bag, community = shop["staff"], shop["bag"], shop["community"]
    plain = await make_reward(
        actor=staff, community_id=community.id, title="抽纸", cost=10, stock=5, image_url=EXTERNAL
    )
    await rewards.set_picture(actor=staff, reward_id=bag.id, content=PNG)
    resident = await make_user(community=community)
    await ledger.award(
        user_id=resident.id, amount=50, source_type="activity", source_id="a1", reason="参加活动"
    )
    redemption = await rewards.redeem_reward(user=resident, reward_id=bag.id)

    listed = await rewards.list_rewards(page=PageRequest(), community_id=community.id)
    managed = await rewards.list_managed_rewards(
        actor=staff, community_id=community.id, page=PageRequest()
    )
    for page in (listed, managed):
        urls = {r.id: image_url(r) for r in page.items}
        assert urls[bag.id].startswith(f"/api/v1/rewards/{bag.id}/picture?v=")
        assert urls[plain.id] == EXTERNAL
    shown = await rewards.get_redemption(viewer=resident, redemption_id=redemption.id)
    assert image_url(shown.reward) == urls[bag.id]


# --- the API ---


def upload(content: bytes, name: str = "bag.png", declared: str = "image/png") -> dict:
    return {"picture": (name, content, declared)}


async def test_put_get_and_delete_a_picture_over_the_api(client, shop):
    staff, bag = shop["staff"], shop["bag"]
    url = f"{REWARDS}/{bag.id}/picture"
    await client.patch(
        f"{REWARDS}/{bag.id}", json={"image_url": EXTERNAL}, headers=auth_headers(staff)
    )

    # WeChat often declares octet-stream: the content decides.
    put = await client.put(
        url, files=upload(JPEG, "x.bin", "application/octet-stream"), headers=auth_headers(staff)
    )

    assert put.status_code == 200, put.text
    image_url = put.json()["image_url"]
    assert image_url.startswith(f"{url}?v=")
    assert (await client.get(f"{REWARDS}/{bag.id}")).json()["image_url"] == image_url
    listed = await client.get(REWARDS, params={"community_id": shop["community"].id})
    assert [r["image_url"] for r in listed.json()["items"]] == [image_url]

    served = await client.get(image_url)  # anyone, no login
    assert served.status_code == 200 and served.content == JPEG
    assert served.headers["content-type"] == "image/jpeg"
    assert "max-age=31536000" in served.headers["cache-control"]
    assert served.headers["x-content-type-options"] == "nosniff"
    latest = await client.get(url)
    assert latest.content == JPEG and "max-age=300" in latest.headers["cache-control"]

    clock.advance(timedelta(seconds=2))
    replaced = await client.put(url, files=upload(PNG), headers=auth_headers(staff))
    assert replaced.json()["image_url"] not in (image_url, "")
    served = await client.get(replaced.json()["image_url"])
    assert served.content == PNG and served.headers["content-type"] == "image/png"

    deleted = await client.delete(url, headers=auth_headers(staff))
    assert deleted.status_code == 200 and deleted.json()["image_url"] == EXTERNAL
    gone = await client.get(url)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


async def test_who_may_upload_over_the_api(client, shop):
    bag, community = shop["bag"], shop["community"]
    url = f"{REWARDS}/{bag.id}/picture"
    resident = await make_user(community=community)
    other_staff = await make_staff(await make_community())

    anonymous = await client.put(url, files=upload(PNG))
    assert anonymous.status_code == 401
    for outsider in (resident, other_staff):
        for response in (
            await client.put(url, files=upload(PNG), headers=auth_headers(outsider)),
            await client.delete(url, headers=auth_headers(outsider)),
        ):
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "forbidden"
    assert await stored() == []

    admin = await make_street_admin()
    allowed = await client.put(url, files=upload(PNG), headers=auth_headers(admin))
    assert allowed.status_code == 200


@pytest.mark.parametrize(
    "files",
    [
        upload(b"GIF89a" + b"\x00" * 16, "x.png"),
        upload(b"<svg/>", "x.png"),
        upload(PNG[:8] + b"\x00" * MAX_IMAGE_BYTES),
    ],
    ids=["gif", "svg", "too-big"],
)
async def test_a_bad_file_is_422_with_nothing_written(client, shop, files):
    response = await client.put(
        f"{REWARDS}/{shop['bag'].id}/picture", files=files, headers=auth_headers(shop["staff"])
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid" and "picture" in error["fields"]
    assert await stored() == []


async def test_a_missing_file_or_reward_has_its_code(client, shop):
    headers = auth_headers(shop["staff"])
    no_file = await client.put(
        f"{REWARDS}/{shop['bag'].id}/picture", data={"x": "1"}, headers=headers
    )
    assert no_file.status_code == 422 and "picture" in no_file.json()["error"]["fields"]
    for response in (
        await client.put(f"{REWARDS}/999999/picture", files=upload(PNG), headers=headers),
        await client.delete(f"{REWARDS}/999999/picture", headers=headers),
        await client.get(f"{REWARDS}/999999/picture"),
    ):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
