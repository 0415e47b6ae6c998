"""The wish and board errors, each with a stable code (API.md) and a Chinese message."""

from __future__ import annotations

from backend.core.errors import Conflict, Forbidden, RateLimited


class AlreadyClaimed(Conflict):
    code = "already_claimed"
    message = "手慢了，这个心愿已被其他人认领"


class NotOpen(Conflict):
    code = "not_open"
    message = "这个心愿当前不可认领"


class ClaimLimitReached(Conflict):
    code = "claim_limit_reached"
    message = "您认领的心愿还有未完成的，请先完成后再认领新的心愿"


class ClaimCooldown(RateLimited):
    code = "claim_cooldown"
    message = "您刚有一个心愿认领已放弃或超时释放，请稍后再认领新的心愿"


class ClaimsPerDayReached(RateLimited):
    code = "claims_per_day_reached"
    message = "您今天认领的心愿已达上限，请明天再来认领"


class WishesPerDayReached(RateLimited):
    code = "wishes_per_day_reached"
    message = "您今天发布的心愿已达上限，请明天再发布"


class BoardItemsPerDayReached(RateLimited):
    code = "board_items_per_day_reached"
    message = "您今天发布的需求和资源已达上限，请明天再发布"


class ClaimerChanged(Conflict):
    code = "claimer_changed"
    message = "认领人已变化，请刷新页面后再确认"


class NotPending(Conflict):
    code = "not_pending_review"
    message = "这个心愿已审核过了"


class NotClaimed(Conflict):
    code = "not_claimed"
    message = "这个心愿当前不在认领中"


class NotFulfilled(Conflict):
    code = "not_fulfilled"
    message = "认领人还未完成这个心愿"


class CannotWithdraw(Conflict):
    code = "cannot_withdraw"
    message = "心愿已被认领或已结束，不能撤回"


class StatusChanged(Conflict):
    code = "status_changed"
    message = "心愿状态已变化，请刷新后再试"


class AlreadyFinal(Conflict):
    code = "already_final"
    message = "心愿已结束，无需关闭"


class OwnWish(Forbidden):
    code = "own_wish"
    message = "不能认领自己发布的心愿"


class NotEligible(Forbidden):
    code = "not_eligible"
    message = "请先在「我的」中选择居住社区或所在单位，再认领心愿"


class NotResident(Forbidden):
    code = "not_resident"
    message = "只能在自己居住的社区发布心愿，请先在「我的」中选择居住社区"


class NotUnitMember(Forbidden):
    code = "not_unit_member"
    message = "只有该单位的成员可以代表单位认领"


class NotPoster(Forbidden):
    code = "not_poster"
    message = "只有发布心愿的居民可以进行此操作"


class NotPosterOrStaff(Forbidden):
    code = "not_poster_or_staff"
    message = "只有心愿人或本社区工作人员可以接受认领"


class NotClaimer(Forbidden):
    code = "not_claimer"
    message = "只有认领人可以进行此操作"


class BoardItemFull(Conflict):
    code = "board_item_full"
    message = "认领名额已满"


class BoardItemClosed(Conflict):
    code = "board_item_closed"
    message = "该项目已停止认领"


class BoardAlreadyClaimed(Conflict):
    code = "board_already_claimed"
    message = "你方已认领过这个项目"


class BoardClaimStateInvalid(Conflict):
    code = "board_claim_state"
    message = "对接状态已变化，请刷新后再试"


class NotBoardSide(Forbidden):
    code = "not_board_side"
    message = "只有对接双方可以进行此操作"
