"""Notice factories, made through the notices service.

`publish_notice` takes the body as keywords and shapes it with NoticeIn as the API and the
H5 form do, so a body the model refuses is `Invalid` naming its fields, like the 422 a
client gets.
"""

from __future__ import annotations

from typing import Any

from backend.accounts.models import User
from backend.notices import service
from backend.notices.models import Notice
from backend.notices.schemas import NoticeIn
from h5.forms import build


async def publish_notice(*, actor: User, **fields: Any) -> Notice:
    """`actor` publishes (or schedules) a notice with this body (see NoticeIn)."""
    return await service.create_notice(actor=actor, data=build(NoticeIn, fields))
