"""微心愿 pages: post → review (with highlighting) → claim → fulfil → confirm, the board,
the Excel export, and no phone number on any page the public can reach."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from openpyxl import load_workbook

from backend.accounts.models import User
from backend.wishes import board
from backend.wishes.models import BoardClaim, Wish, WishPhoto
from tests.factories import (
    COMMUNITY_CONTACT,
    RESIDENT_PHONE,
    Neighbourhood,
    make_neighbourhood,
    make_staff,
    session_cookies,
)
from tests.factories.wishes import RESIDENT_PHONE_MASKED, open_wish, publish_item
from tests.h5.conftest import csrf_token

PHONE = re.compile(r"1[3-9]\d{9}")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def hood(db: None) -> Neighbourhood:
    return await make_neighbourhood()


def login(client: httpx.AsyncClient, user: User, cookies: dict[str, str] | None = None) -> None:
    client.cookies.clear()
    for name, value in (cookies or session_cookies(user)).items():
        client.cookies.set(name, value)


async def submit(
    client: httpx.AsyncClient, page: str, action: str, data: dict, files=None
) -> httpx.Response:
    """Open `page`, take its form token, post `data` to `action` as the browser would."""
    token = csrf_token((await client.get(page)).text)
    return await client.post(action, data={**data, "csrf_token": token}, files=files)


async def test_a_wish_from_posting_to_thanks(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    login(client, hood.resident)
    form = await client.get("/h5/wishes/new")
    assert form.status_code == 200 and "发布到 大田社区" in form.text
    posted = await submit(
        client,
        "/h5/wishes/new",
        "/h5/wishes",
        {
            "title": "想请人陪我去医院",
            "description": "周五去复诊，电话 13812345678，身份证 31010119800101123X",
            "category": "助老助残",
            "needed_by": "",
            "address": "5 号楼 302",
        },
    )
    assert posted.status_code == 303
    wish_id = int(re.search(r"/h5/wishes/(\d+)\?done=submitted", posted.headers["location"])[1])
    mine = await client.get("/h5/wishes/mine")
    assert "想请人陪我去医院" in mine.text and "待审核" in mine.text

    # Staff see the personal data marked in the review queue, and approve from there.
    login(client, hood.staff)
    queue = await client.get("/h5/wishes/review")
    assert queue.status_code == 200
    assert '<mark title="疑似手机号">13812345678</mark>' in queue.text
    assert '<mark title="疑似身份证号">31010119800101123X</mark>' in queue.text
    approved = await submit(
        client,
        "/h5/wishes/review",
        f"/h5/wishes/{wish_id}/review",
        {"decision": "approve", "reason": "", "back": "/h5/wishes/review"},
    )
    assert approved.headers["location"] == "/h5/wishes/review?done=approved"

    # On the wall the number is masked and the poster is 王**.
    login(client, hood.neighbour)
    wall = await client.get("/h5/wishes")
    assert "想请人陪我去医院" in wall.text and "王**" in wall.text
    assert not PHONE.search(wall.text)
    detail = await client.get(f"/h5/wishes/{wish_id}")
    assert "我来认领" in detail.text and not PHONE.search(detail.text)
    claimed = await submit(client, f"/h5/wishes/{wish_id}", f"/h5/wishes/{wish_id}/claim", {})
    assert claimed.headers["location"] == f"/h5/wishes/{wish_id}?done=claimed"
    detail = await client.get(claimed.headers["location"])
    assert "认领成功" in detail.text
    # The claimer is given the community's contact and a masked phone, nothing more yet.
    assert not PHONE.search(detail.text) and "5 号楼 302" not in detail.text
    assert RESIDENT_PHONE_MASKED in detail.text
    assert COMMUNITY_CONTACT[0] in detail.text
    assert f'href="tel:{COMMUNITY_CONTACT[1]}"' in detail.text
    assert "心愿人接受您的认领后" in detail.text

    # The poster accepts the claimer; the reveal is in the history.
    login(client, hood.resident)
    detail = await client.get(f"/h5/wishes/{wish_id}")
    assert "接受认领并告知联系方式" in detail.text
    accepted = await submit(
        client,
        f"/h5/wishes/{wish_id}",
        f"/h5/wishes/{wish_id}/accept",
        {"claimer_id": str(hood.neighbour.id)},
    )
    assert accepted.headers["location"] == f"/h5/wishes/{wish_id}?done=accepted"
    detail = await client.get(accepted.headers["location"])
    assert "接受认领，告知联系方式" in detail.text and "接受认领并告知联系方式" not in detail.text
    assert (await Wish.get(id=wish_id)).accepted_at is not None

    login(client, hood.neighbour)
    detail = await client.get(f"/h5/wishes/{wish_id}")
    assert f'href="tel:{RESIDENT_PHONE}"' in detail.text and "5 号楼 302" in detail.text

    fulfilled = await submit(
        client,
        f"/h5/wishes/{wish_id}",
        f"/h5/wishes/{wish_id}/fulfil",
        {"note": "已陪同复诊，一切顺利"},
        files={"photo": ("photo.png", PNG, "image/png")},
    )
    assert fulfilled.status_code == 303
    assert await WishPhoto.filter(wish_id=wish_id).count() == 1

    login(client, hood.resident)
    detail = await client.get(f"/h5/wishes/{wish_id}")
    assert "确认并感谢" in detail.text and "已陪同复诊" in detail.text
    photo = await client.get(f"/h5/wishes/{wish_id}/photo")
    assert photo.status_code == 200 and photo.content == PNG
    confirmed = await submit(
        client,
        f"/h5/wishes/{wish_id}",
        f"/h5/wishes/{wish_id}/confirm",
        {"rating": "5", "thanks": "谢谢李师傅"},
    )
    assert confirmed.status_code == 303
    detail = await client.get(confirmed.headers["location"])
    assert "已圆梦" in detail.text and "★★★★★" in detail.text
    for step in (
        "提交心愿",
        "审核通过",
        "认领心愿",
        "接受认领，告知联系方式",
        "完成心愿",
        "确认并评价",
    ):
        assert step in detail.text
    assert (await User.get(id=hood.neighbour.id)).points_balance == 10

    # Someone else may not see the photo.
    login(client, hood.party_member)
    assert (await client.get(f"/h5/wishes/{wish_id}/photo")).status_code == 404


async def test_a_lost_race_shows_the_wish_with_the_reason(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    wish = await open_wish(hood)
    # The same session both times: the form token is bound to it.
    neighbour = session_cookies(hood.neighbour)
    login(client, hood.neighbour, neighbour)
    page = f"/h5/wishes/{wish.id}"
    token = csrf_token((await client.get(page)).text)
    login(client, hood.party_member)
    await submit(client, page, f"/h5/wishes/{wish.id}/claim", {})
    login(client, hood.neighbour, neighbour)
    late = await client.post(f"/h5/wishes/{wish.id}/claim", data={"csrf_token": token})
    assert late.status_code == 409
    assert "手慢了，这个心愿已被其他人认领" in late.text
    assert "王**" in late.text and not PHONE.search(late.text)


async def test_a_unit_member_claims_for_the_unit(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    wish = await open_wish(hood)
    login(client, hood.unit_member)
    page = await client.get(f"/h5/wishes/{wish.id}")
    assert "以「育才学校」的名义认领" in page.text
    await submit(client, f"/h5/wishes/{wish.id}", f"/h5/wishes/{wish.id}/claim", {"for_unit": "1"})
    assert (await Wish.get(id=wish.id)).claimer_unit_id == hood.unit.id
    wall = await client.get("/h5/wishes")
    assert "育才学校 认领" in wall.text


async def test_bad_input_comes_back_on_the_form(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    login(client, hood.resident)
    response = await submit(
        client,
        "/h5/wishes/new",
        "/h5/wishes",
        {"title": "x", "description": "太短", "category": "其他", "needed_by": "明天"},
    )
    assert response.status_code == 422
    assert "提交的内容有误" in response.text and 'value="x"' in response.text
    login(client, hood.newcomer)
    assert "请先选择居住社区" in (await client.get("/h5/wishes/new")).text
    assert (await client.get("/h5/wishes?status=nope")).status_code == 422
    assert (await client.get("/h5/wishes/999999")).status_code == 404
    assert (await client.get(f"/h5/wishes/{2**70}")).status_code in (404, 422)


async def test_staff_pages_are_for_staff(client: httpx.AsyncClient, hood: Neighbourhood) -> None:
    login(client, hood.neighbour)
    assert (await client.get("/h5/wishes/review")).status_code == 403
    assert (await client.get("/h5/wishes/export.xlsx")).status_code == 403
    assert (await client.get("/h5/wishes/board/matching")).status_code == 403
    nav = await client.get("/h5/wishes")
    assert 'href="/h5/wishes/review"' not in nav.text
    login(client, hood.staff)
    assert 'href="/h5/wishes/review"' in (await client.get("/h5/wishes")).text


async def test_the_excel_export(client: httpx.AsyncClient, hood: Neighbourhood) -> None:
    wish = await open_wish(hood, title='=HYPERLINK("http://evil")心愿')
    await open_wish(hood, title="第二个心愿")
    from backend.wishes import service

    await service.claim_wish(user=hood.unit_member, wish_id=wish.id, unit_id=hood.unit.id)
    login(client, hood.staff)
    response = await client.get("/h5/wishes/export.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["微心愿", "单位认领统计", "双向认领"]
    rows = list(book["微心愿"].iter_rows(values_only=True))
    assert rows[0][:4] == ("编号", "社区", "类别", "标题")
    titles = [r[3] for r in rows[1:]]
    assert titles == ['=HYPERLINK("http://evil")心愿', "第二个心愿"]
    assert all(cell.data_type != "f" for row in book["微心愿"].iter_rows() for cell in row)
    assert [r[5] for r in rows[1:]] == ["王**", "王**"]
    assert not PHONE.search(str(rows))
    credits = list(book["单位认领统计"].iter_rows(values_only=True))
    assert credits[1] == ("育才学校", 1, 0, 0)
    # Another community's staff export nothing of this one.
    login(client, hood.other_staff)
    other = load_workbook(io.BytesIO((await client.get("/h5/wishes/export.xlsx")).content))
    assert other["微心愿"].max_row == 1


async def test_the_two_way_board_pages(client: httpx.AsyncClient, hood: Neighbourhood) -> None:
    login(client, hood.staff)
    form = await client.get("/h5/wishes/board/new?kind=need")
    assert (
        "发布社区需求" in form.text or "发布社区需求" in (await client.get("/h5/wishes/board")).text
    )
    published = await submit(
        client,
        "/h5/wishes/board/new?kind=need",
        "/h5/wishes/board",
        {
            "kind": "need",
            "community_id": str(hood.community.id),
            "title": "助老陪护",
            "description": "每周二陪伴独居老人",
            "category": "助老服务",
            "quantity": "2",
        },
    )
    assert published.status_code == 303, published.text
    item_path = published.headers["location"].split("?")[0]
    item_id = int(item_path.rsplit("/", 1)[1])

    login(client, hood.unit_member)
    board_page = await client.get("/h5/wishes/board")
    assert "助老陪护" in board_page.text and "余 2/2" in board_page.text
    claimed = await submit(client, item_path, f"{item_path}/claim", {})
    assert claimed.headers["location"] == f"{item_path}?done=board_claimed"
    claim = await BoardClaim.get(item_id=item_id)

    login(client, hood.staff)
    page = await client.get(item_path)
    assert "育才学校" in page.text and "确认对接" in page.text
    for user, action in ((hood.staff, "confirm"), (hood.staff, "done")):
        login(client, user)
        done = await submit(
            client,
            item_path,
            f"/h5/wishes/board/claims/{claim.id}/{action}",
            {"item_id": str(item_id)},
        )
        assert done.status_code == 303, done.text
    login(client, hood.unit_member)
    noted = await submit(
        client,
        item_path,
        f"/h5/wishes/board/claims/{claim.id}/progress",
        {"item_id": str(item_id), "note": "已安排 2 名志愿者"},
    )
    assert noted.status_code == 303
    token = csrf_token((await client.get(item_path)).text)
    finished = await client.post(
        f"/h5/wishes/board/claims/{claim.id}/done",
        data={"item_id": str(item_id), "csrf_token": token},
    )
    assert finished.status_code == 303
    assert (await BoardClaim.get(id=claim.id)).status == "done"
    wrong = await client.post(
        f"/h5/wishes/board/claims/{claim.id}/explode",
        data={"item_id": str(item_id), "csrf_token": token},
    )
    assert wrong.status_code == 422

    login(client, hood.street_admin)
    matching = await client.get("/h5/wishes/board/matching")
    assert matching.status_code == 200 and "大田社区" in matching.text


@pytest.mark.parametrize("who", ["newcomer", "party_member", "other_staff"])
async def test_no_page_a_stranger_can_reach_shows_a_phone_number(
    client: httpx.AsyncClient, hood: Neighbourhood, who: str
) -> None:
    public = await open_wish(hood, description="有事请打 13812345678 或 021-62171234")
    claimed = await open_wish(hood, title="已被认领的心愿")
    from backend.wishes import service

    await service.claim_wish(user=hood.neighbour, wish_id=claimed.id)
    login(client, getattr(hood, who))
    paths = [
        "/h5/wishes",
        "/h5/wishes?status=claimed",
        f"/h5/wishes/{public.id}",
        f"/h5/wishes/{claimed.id}",
        "/h5/wishes/mine",
        "/h5/wishes/board",
        "/h5/wishes/board?kind=resource",
    ]
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert not PHONE.search(response.text), path
    # 「我的」always carries a form token, whatever the wish page offers this visitor.
    refused = await submit(client, "/h5/me", f"/h5/wishes/{claimed.id}/claim", {})
    assert refused.status_code in (403, 409) and not PHONE.search(refused.text)


async def test_the_form_offers_contact_through_the_community(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    login(client, hood.resident)
    form = await client.get("/h5/wishes/new")
    assert "由社区联系" in form.text and "您的手机号和地址不会告知认领人" in form.text
    posted = await submit(
        client,
        "/h5/wishes/new",
        "/h5/wishes",
        {
            "title": "想请人帮忙修水龙头",
            "description": "厨房水龙头漏水，需要帮忙。",
            "category": "生活帮扶",
            "address": "5 号楼 302",
            "contact_via": "community",
        },
    )
    assert posted.status_code == 303
    wish = await Wish.get(title="想请人帮忙修水龙头")
    assert wish.contact_via == "community"
    await Wish.filter(id=wish.id).update(status="open")

    login(client, hood.neighbour)
    await submit(client, f"/h5/wishes/{wish.id}", f"/h5/wishes/{wish.id}/claim", {})
    # Staff accept for the poster; the claimer is still pointed at the community.
    login(client, hood.staff)
    detail = await client.get(f"/h5/wishes/{wish.id}")
    assert "接受认领（由社区联系）" in detail.text and "请由社区工作人员与认领人对接" in detail.text
    await submit(
        client,
        f"/h5/wishes/{wish.id}",
        f"/h5/wishes/{wish.id}/accept",
        {"claimer_id": str(hood.neighbour.id)},
    )
    detail = await client.get(f"/h5/wishes/{wish.id}")
    assert "接受认领（由社区联系）" in detail.text  # now in the history
    assert "社区工作人员代心愿人接受了李**的认领" in detail.text
    login(client, hood.neighbour)
    detail = await client.get(f"/h5/wishes/{wish.id}")
    assert not PHONE.search(detail.text) and "5 号楼 302" not in detail.text
    assert "心愿人选择由社区联系" in detail.text and COMMUNITY_CONTACT[1] in detail.text


async def test_caps_and_bad_characters_are_explained_on_the_page(
    client: httpx.AsyncClient, hood: Neighbourhood, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.core.config import reset_settings

    monkeypatch.setenv("LINLI_WISHES_PER_DAY", "3")
    reset_settings()
    first, second = await open_wish(hood, title="心愿一"), await open_wish(hood, title="心愿二")
    login(client, hood.neighbour)
    await submit(client, f"/h5/wishes/{first.id}", f"/h5/wishes/{first.id}/claim", {})
    await submit(client, f"/h5/wishes/{first.id}", f"/h5/wishes/{first.id}/release", {})
    refused = await submit(client, f"/h5/wishes/{second.id}", f"/h5/wishes/{second.id}/claim", {})
    assert refused.status_code == 429
    assert "为避免反复认领" in refused.text and "后再认领新的心愿" in refused.text
    assert (await Wish.get(id=second.id)).status == "open"

    login(client, hood.resident)
    values = {"description": "需要一点帮助。", "category": "其他"}
    bad = await submit(
        client, "/h5/wishes/new", "/h5/wishes", {**values, "title": "想请人\x00帮忙"}
    )
    assert bad.status_code == 422 and "不能包含控制字符" in bad.text
    made = await submit(client, "/h5/wishes/new", "/h5/wishes", {**values, "title": "第三个心愿"})
    assert made.status_code == 303
    capped = await submit(client, "/h5/wishes/new", "/h5/wishes", {**values, "title": "第四个心愿"})
    assert capped.status_code == 429
    assert "您今天已发布 3 个心愿，达到每日上限，请明天再发布" in capped.text
    assert 'value="第四个心愿"' in capped.text
    assert await Wish.filter(poster_id=hood.resident.id).count() == 3


async def test_the_board_shows_the_other_side_masked_until_confirmed(
    client: httpx.AsyncClient, hood: Neighbourhood
) -> None:
    publisher = await make_staff(hood.community, nickname="陈社工", phone="13300004444")
    need = await publish_item(
        actor=publisher,
        kind="need",
        community_id=hood.community.id,
        title="助老陪护",
        description="每周二上午陪伴独居老人聊天。",
        category="助老服务",
        quantity=1,
    )
    claim = await board.claim_item(actor=hood.unit_member, item_id=need.id, unit_id=hood.unit.id)
    login(client, hood.unit_member)
    page = await client.get(f"/h5/wishes/board/{need.id}")
    assert "发布方联系人：陈** 133****4444" in page.text and "13300004444" not in page.text
    login(client, hood.neighbour)
    page = await client.get(f"/h5/wishes/board/{need.id}")
    assert "133****4444" not in page.text and "联系人" not in page.text
    await board.confirm_claim(actor=publisher, claim_id=claim.id)
    login(client, hood.unit_member)
    page = await client.get(f"/h5/wishes/board/{need.id}")
    assert 'href="tel:13300004444"' in page.text and "陈社工" in page.text
