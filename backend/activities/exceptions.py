"""The activities domain's errors: stable codes (API.md) with the Chinese sentence to show."""

from __future__ import annotations

# Check-in codes are one mechanism for activities and service posts, and so are their errors.
from backend.core.checkin import CheckinCodeInvalid as CheckinCodeInvalid
from backend.core.checkin import CheckinLocked as CheckinLocked
from backend.core.errors import Conflict, Forbidden


class SoldOut(Conflict):
    code = "sold_out"
    message = "名额和候补都已满，下次早点来哦"


class AlreadyBooked(Conflict):
    code = "already_booked"
    message = "您已报名该活动，请在“我的报名”中查看"


class BookingNotOpen(Conflict):
    code = "booking_not_open"
    message = "报名尚未开始，请到开放时间再来"


class BookingClosed(Conflict):
    code = "booking_closed"
    message = "报名已截止"


class LimitReached(Conflict):
    code = "limit_reached"
    message = "本月这类活动您的报名次数已用完"


class NotEligible(Forbidden):
    code = "not_eligible"
    message = "该活动仅面向指定人群，您暂不符合报名条件"


class NoShowBlocked(Conflict):
    code = "no_show_blocked"
    message = "近期多次报名未到场，暂时不能报名热门活动"


class ActivityCancelled(Conflict):
    code = "activity_cancelled"
    message = "活动已取消"


class CancelDeadlinePassed(Conflict):
    code = "cancel_deadline_passed"
    message = "已过取消截止时间，不能取消了"


class NotCancellable(Conflict):
    code = "not_cancellable"
    message = "这条报名已结束，不能取消"


class CheckinClosed(Conflict):
    code = "checkin_closed"
    message = "现在不在签到时间内"


class NotBooked(Conflict):
    code = "not_booked"
    message = "您没有该活动的有效报名，不能签到"


class AttendanceNotOpen(Conflict):
    code = "attendance_not_open"
    message = "活动开始后才能登记出勤"


class NotNoShow(Conflict):
    code = "not_no_show"
    message = "只有“未到场”的报名可以免责"


class BookingsExist(Conflict):
    code = "bookings_exist"
    message = "已有人报名，不能再修改报名方式"
