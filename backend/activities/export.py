"""The sign-up sheet staff download: an activity's bookings and attendance as .xlsx."""

from __future__ import annotations

from backend.accounts.models import User
from backend.activities.access import load_for_staff
from backend.activities.attendance import attendees
from backend.activities.models import Booking
from backend.activities.views import STATUS_NAMES
from backend.core.clock import local_text


async def export_bookings_xlsx(*, actor: User, activity_id: int) -> tuple[str, bytes]:
    """Staff: (file name, .xlsx bytes) of the activity's sign-ups and attendance."""
    # Imported here: openpyxl is large, and most app processes never export anything.
    from backend.core.xlsx import Spreadsheet

    activity = await load_for_staff(actor, activity_id)
    bookings = await Booking.filter(activity_id=activity_id).order_by("id")
    book = Spreadsheet()
    sheet = book.sheet(
        "报名与签到",
        caption=" ".join(
            part
            for part in (activity.title, local_text(activity.starts_at), activity.location)
            if part
        ),
        header=["序号", "昵称", "手机号", "状态", "候补位次", "报名时间", "签到时间", "免责"],
        widths=[8, 16, 14, 10, 10, 18, 18, 8],
    )
    # Phones stay masked: at the door staff match a person by nickname and the last four
    # digits, and the file travels further than the page.
    for number, view in enumerate(await attendees(bookings), start=1):
        b = view.booking
        sheet.append(
            [
                number,
                view.nickname,
                view.phone or "",
                STATUS_NAMES.get(b.status, b.status),
                view.waitlist_position,
                b.created_at,
                b.checked_in_at,
                "是" if b.excused_at else "",
            ]
        )
    return f"activity-{activity.id}-bookings.xlsx", book.to_bytes()
