"""The refusals of the points domain, each with a stable code and a Chinese message."""

from __future__ import annotations

from backend.core.errors import Conflict


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    message = "积分不足"


class CapReached(Conflict):
    code = "points_cap_reached"
    message = "超过了该项积分每人每日或每月的上限"


class RuleInForce(Conflict):
    code = "rule_in_force"
    message = "已经生效的规则不能撤回，如需调整请新增一条规则"


class OutOfStock(Conflict):
    code = "out_of_stock"
    message = "礼品已兑完"


class LimitReached(Conflict):
    code = "limit_reached"
    message = "已达到每人兑换上限"


class NotOnSale(Conflict):
    code = "not_on_sale"
    message = "该礼品当前不在兑换期内"


class PhoneAmbiguous(Conflict):
    code = "phone_ambiguous"
    message = "这个手机号登记了不止一位居民，请改填居民编号"
