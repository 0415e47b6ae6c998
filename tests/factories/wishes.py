"""Wish and board factories on top of the neighbourhood, made through the wishes services so
every wish is one a resident could post and staff could approve.

`submit_wish` and `publish_item` take the body as keywords and shape it with the request
model as the API and the H5 forms do, so a body the model refuses is `Invalid` naming its
fields, like the 422 a client gets.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from backend.accounts.models import User
from backend.wishes import board, service
from backend.wishes.schemas import BoardItemIn, WishIn
from backend.wishes.views import BoardItemDetail, WishDetail
from h5.forms import build
from tests.factories import RESIDENT_PHONE, Neighbourhood

# The resident's phone as a claimer sees it before the resident accepts the claim.
RESIDENT_PHONE_MASKED = RESIDENT_PHONE[:3] + "****" + RESIDENT_PHONE[-4:]


async def submit_wish(*, user: User, **fields: Any) -> WishDetail:
    """`user` posts a wish with this body (see WishIn)."""
    return await service.submit_wish(user=user, data=build(WishIn, fields))


async def post_wish(
    hood: Neighbourhood,
    *,
    poster: User | None = None,
    title: str = "想请人陪我去医院复诊",
    description: str = "周五上午去瑞金医院复诊，需要有人陪同。",
    category: str = "助老助残",
    needed_by: date | None = None,
    address: str = "大田社区 5 号楼",
    contact_via: str = "direct",
) -> WishDetail:
    """A wish waiting for review, posted by `poster` (the neighbourhood's resident by default)
    in their community."""
    poster = poster or hood.resident
    return await submit_wish(
        user=poster,
        community_id=poster.community_id,
        title=title,
        description=description,
        category=category,
        needed_by=needed_by,
        address=address,
        contact_via=contact_via,
    )


async def open_wish(hood: Neighbourhood, **fields: Any) -> WishDetail:
    """A wish posted (see `post_wish`) and approved by the community's staff."""
    wish = await post_wish(hood, **fields)
    return await service.review_wish(actor=hood.staff, wish_id=wish.id, approve=True)


async def publish_item(*, actor: User, **fields: Any) -> BoardItemDetail:
    """`actor` publishes a need or a resource on the two-way board with this body (see
    BoardItemIn)."""
    return await board.publish_item(actor=actor, data=build(BoardItemIn, fields))


async def publish_need(
    hood: Neighbourhood, *, quantity: int = 2, category: str = "助老服务"
) -> BoardItemDetail:
    """A need of the neighbourhood's community, published by its staff."""
    return await publish_item(
        actor=hood.staff,
        kind="need",
        community_id=hood.community.id,
        title="助老陪护志愿者",
        description="每周二上午陪伴独居老人聊天、读报。",
        category=category,
        quantity=quantity,
    )


async def publish_resource(
    hood: Neighbourhood, *, quantity: int = 3, category: str = "健康医疗"
) -> BoardItemDetail:
    """A resource of the neighbourhood's unit, published by its member."""
    return await publish_item(
        actor=hood.unit_member,
        kind="resource",
        unit_id=hood.unit.id,
        title="社区义诊",
        description="每月一次，测血压、血糖，健康咨询。",
        category=category,
        quantity=quantity,
    )
