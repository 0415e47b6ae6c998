"""The staff Excel export: wishes, unit credits and the two-way board of one's communities.

Names are masked and phones left out: a spreadsheet travels further than a page.
"""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q

from backend.accounts.models import User
from backend.core.security import mask_name
from backend.core.xlsx import Spreadsheet
from backend.wishes.lists import staff_scope, unit_credits
from backend.wishes.models import BoardClaim, Wish
from backend.wishes.views import CLAIM_STATUS_LABELS, KIND_LABELS, STATUS_LABELS


def _sheet(book: Spreadsheet, title: str, header: list[str], rows: list[list[Any]]) -> None:
    sheet = book.sheet(title, header=header)
    for row in rows:
        sheet.append(row)


async def export_wishes_xlsx(*, actor: User, community_id: int | None = None) -> bytes:
    """An .xlsx of the wishes, unit credits and board claims within `actor`'s staff scope."""
    communities = await staff_scope(actor=actor, community_id=community_id)
    wishes = Wish.all().select_related("community", "poster", "claimer", "claimer_unit")
    claims = BoardClaim.all().select_related(
        "item", "item__community", "item__unit", "unit", "community"
    )
    if communities is not None:
        wishes = wishes.filter(community_id__in=communities)
        claims = claims.filter(
            Q(item__community_id__in=communities) | Q(community_id__in=communities)
        )
    book = Spreadsheet()
    _sheet(
        book,
        "微心愿",
        [
            "编号", "社区", "类别", "标题", "状态", "心愿人", "希望完成日期",
            "认领单位", "认领人", "认领时间", "完成时间", "确认时间", "评分", "发布时间",
        ],
        [
            [
                w.id,
                w.community.name,
                w.category,
                w.title,
                STATUS_LABELS.get(w.status, w.status),
                mask_name(w.poster.nickname),
                w.needed_by,
                w.claimer_unit.name if w.claimer_unit_id else "",
                mask_name(w.claimer.nickname) if w.claimer_id else "",
                w.claimed_at,
                w.fulfilled_at,
                w.closed_at,
                w.rating,
                w.created_at,
            ]
            for w in await wishes.order_by("id")
        ],
    )  # fmt: skip
    _sheet(
        book,
        "单位认领统计",
        ["单位", "认领中", "已完成待确认", "已圆梦"],
        [
            [c.unit_name, c.claimed, c.fulfilled, c.closed]
            for c in await unit_credits(actor=actor, community_id=community_id)
        ],
    )
    _sheet(
        book,
        "双向认领",
        ["类型", "项目", "发布方", "认领方", "状态", "进展", "认领时间", "完成时间"],
        [
            [
                KIND_LABELS[c.item.kind],
                c.item.title,
                c.item.community.name if c.item.kind == "need" else c.item.unit.name,
                c.unit.name if c.unit_id else c.community.name,
                CLAIM_STATUS_LABELS.get(c.status, c.status),
                c.progress_note,
                c.created_at,
                c.done_at,
            ]
            for c in await claims.order_by("id")
        ],
    )
    return book.to_bytes()
