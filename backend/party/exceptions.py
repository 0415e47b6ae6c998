"""The party domain's errors: each a stable `code` and the Chinese message people read."""

from __future__ import annotations

# Check-in codes are one mechanism for activities and service posts, and so are their errors.
from backend.core.checkin import CheckinCodeInvalid as CheckinCodeInvalid
from backend.core.checkin import CheckinLocked as CheckinLocked
from backend.core.errors import Conflict, Forbidden


class AlreadyRegistered(Conflict):
    code = "already_registered"
    message = "您已在该社区报到，请勿重复提交"


class NotReviewable(Conflict):
    code = "registration_not_reviewable"
    message = "该报到申请已处理，无需重复审核"


class NotPartyMember(Forbidden):
    code = "not_party_member"
    message = "报到审核通过后才能认领岗位和记录服务"


class PostFull(Conflict):
    code = "post_full"
    message = "该岗位名额已满"


class AlreadyHasPost(Conflict):
    code = "already_has_post"
    message = "本年度您已认领一个岗位，每人每年度限认领一个"


class PostClosed(Conflict):
    code = "post_closed"
    message = "该岗位已停止认领"


class NotClaimable(Conflict):
    code = "post_not_claimable"
    message = "社区任务无需认领，服务时直接扫码签到即可"


class CapacityBelowTaken(Conflict):
    code = "capacity_below_taken"
    message = "名额不能少于已认领的人数"


class AssignmentNotActive(Conflict):
    code = "assignment_not_active"
    message = "该岗位认领已结束"


class PostOffHours(Conflict):
    code = "post_off_hours"
    message = "现在不在本岗位的服务时间内"


class AlreadyCheckedIn(Conflict):
    code = "already_checked_in"
    message = "您已签到，请先签退再重新签到"


class NotCheckedIn(Conflict):
    code = "not_checked_in"
    message = "您没有在这个岗位签到，无法签退"


class NotYourPost(Forbidden):
    code = "not_post_holder"
    message = "您没有认领这个岗位，请先认领后再签到"
