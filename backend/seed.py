"""`linli seed-demo`: the demo street, its communities, buildings and units, and the personas.

Every row is found by its natural key (slug, persona, openid, ledger source) before it is
created and never overwritten, so running the seed again changes nothing — not even a
demo user's edits to their own profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TypeVar

from backend.accounts import service as accounts_service
from backend.accounts.models import User, WechatIdentity
from backend.activities import catalogue as activity_catalogue
from backend.activities.models import Activity
from backend.activities.schemas import ActivityIn
from backend.core.clock import clock, local_today, local_zone
from backend.core.config import Settings
from backend.core.db import close_db, init_db
from backend.core.security import blind_index, encrypt_field
from backend.notices import service as notices_service
from backend.notices.models import Notice
from backend.notices.schemas import NoticeIn
from backend.orgs.models import Building, Community, Street, Unit
from backend.party import hours as party_hours
from backend.party import posts as party_posts
from backend.party import registrations as party_registrations
from backend.party.models import PartyRegistration, ServicePost
from backend.party.schemas import PostIn, RegistrationIn, ReviewIn
from backend.points import ledger as points_ledger
from backend.points import rewards as points_rewards
from backend.points.models import Reward
from backend.points.schemas import RewardIn
from backend.wishes import board as wishes_board
from backend.wishes import service as wishes_service
from backend.wishes.models import BoardItem, Wish
from backend.wishes.schemas import BoardItemIn, WishIn

STREET = ("shimen-er-lu", "石门二路街道")

# (slug, name, staff contact, their work phone): the contact a wish's claimer is given.
COMMUNITIES = (
    ("xinfukangli", "新福康里居民区", "陈社工", "021-62530101"),
    ("huaqin", "华沁居民区", "刘社工", "021-62530102"),
    ("hengfeng", "恒丰居民区", "孙社工", "021-62530103"),
    ("zhonghua-xincun", "中华新村居民区", "吴社工", "021-62530104"),
)

# (slug, name, address, community slug or None)
BUILDINGS = (
    ("meilongzhen-plaza", "梅龙镇广场", "南京西路 1038 号", None),
    ("yueyang-plaza", "越洋广场", "南京西路 1601 号", None),
    ("hengfeng-tower", "恒丰商务楼", "恒丰路 200 号", "hengfeng"),
)

# (slug, name, community slug or None)
UNITS = (
    ("shimen-health-center", "石门二路社区卫生服务中心", "hengfeng"),
    ("linli-primary-school", "静安区邻里实验小学", "zhonghua-xincun"),
    ("shuzhi-tech", "静安数智科技有限公司", None),
)


@dataclass(frozen=True)
class Persona:
    key: str
    nickname: str
    phone: str
    community: str | None = None
    building: str | None = None
    unit: str | None = None
    # (role, community slug or None for street-wide)
    grants: tuple[tuple[str, str | None], ...] = ()


PERSONAS = (
    Persona("resident", "王阿姨", "13800000001", community="xinfukangli"),
    Persona(
        "party_member",
        "李建国",
        "13800000002",
        community="huaqin",
        grants=(("party_member", "huaqin"),),
    ),
    Persona("worker", "张晓", "13800000003", building="meilongzhen-plaza", unit="shuzhi-tech"),
    Persona(
        "staff",
        "陈社工",
        "13800000004",
        community="xinfukangli",
        grants=(("staff", "xinfukangli"),),
    ),
    Persona("street_admin", "周主任", "13800000005", grants=(("street_admin", None),)),
)

# (persona, amount (negative: spent), source id, reason)
DEMO_POINTS = (
    ("resident", 30, "resident-activity-1", "参加“邻里议事会”活动"),
    ("resident", 20, "resident-wish-1", "微心愿圆梦：帮邻居代买药品"),
    ("resident", -10, "resident-reward-1", "兑换环保购物袋"),
    ("party_member", 50, "party-service-1", "文明示范岗志愿服务 2 小时"),
)
DEMO_SOURCE = "demo"

T = TypeVar("T")


@dataclass
class Demo:
    """What the seed made, by natural key, for the steps that build on it."""

    street: Street
    communities: dict[str, Community] = field(default_factory=dict)
    buildings: dict[str, Building] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


def _pick(made: dict[str, T], slug: str | None) -> T | None:
    return made[slug] if slug else None


async def _seed_orgs() -> Demo:
    street, _ = await Street.get_or_create(slug=STREET[0], defaults={"name": STREET[1]})
    demo = Demo(street=street)
    for slug, name, contact_name, contact_phone in COMMUNITIES:
        contact = {"contact_name": contact_name, "contact_phone": contact_phone}
        community, _ = await Community.get_or_create(
            slug=slug, defaults={"name": name, "street": street, **contact}
        )
        # Communities seeded before they had a contact get one; one set by staff is kept.
        await Community.filter(id=community.id, contact_name="", contact_phone="").update(**contact)
        demo.communities[slug] = await Community.get(id=community.id)
    for slug, name, address, community in BUILDINGS:
        demo.buildings[slug], _ = await Building.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "address": address,
                "street": street,
                "community": _pick(demo.communities, community),
            },
        )
    for slug, name, community in UNITS:
        demo.units[slug], _ = await Unit.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "street": street,
                "community": _pick(demo.communities, community),
            },
        )
    return demo


async def _seed_personas(demo: Demo, settings: Settings) -> None:
    for persona in PERSONAS:
        user, _ = await User.get_or_create(
            persona=persona.key,
            defaults={
                "nickname": persona.nickname,
                "phone_encrypted": encrypt_field(persona.phone),
                "phone_index": blind_index(persona.phone),
                "community": _pick(demo.communities, persona.community),
                "building": _pick(demo.buildings, persona.building),
                "unit": _pick(demo.units, persona.unit),
            },
        )
        demo.users[persona.key] = user
        # An official-account identity, so `linli grant demo-<persona> ...` finds the persona.
        await WechatIdentity.get_or_create(
            app_id=settings.oa_appid,
            openid=f"demo-{persona.key}",
            defaults={"user": user, "kind": accounts_service.KIND_OFFICIAL_ACCOUNT},
        )
        for role, community in persona.grants:
            await accounts_service.grant_role(
                actor=None,
                user_id=user.id,
                role=role,
                community_id=demo.communities[community].id if community else None,
            )


async def _seed_points(demo: Demo) -> None:
    for persona, amount, source_id, reason in DEMO_POINTS:
        change = points_ledger.award if amount > 0 else points_ledger.spend
        await change(
            user_id=demo.users[persona].id,
            amount=abs(amount),
            source_type=DEMO_SOURCE,
            source_id=source_id,
            reason=reason,
        )


# --- micro-wishes and the two-way board ---

# (title, description, category, approved, claimed by persona): posted by the resident.
DEMO_WISHES = (
    (
        "想请人帮忙换个灯泡",
        "厨房顶灯坏了，家里没有梯子，想请邻居帮忙换一下。",
        "生活帮扶",
        True,
        None,
    ),
    (
        "孙子想参观科技馆",
        "孙子今年八岁，特别喜欢机器人，想请人带他去一次上海科技馆。",
        "儿童心愿",
        True,
        "party_member",
    ),
    # Left for review: the demo staff see the phone number highlighted.
    (
        "周末想去外滩看看夜景",
        "腿脚不便，希望有人陪同，联系电话 13800000001。",
        "助老助残",
        False,
        None,
    ),
)
# (kind, persona, title, description, category, quantity)
DEMO_BOARD = (
    ("need", "staff", "助老陪护", "每周二上午陪伴独居老人聊天、读报。", "助老服务", 3),
    ("need", "staff", "少儿科普讲座", "暑期为社区孩子办一场科普讲座。", "文化教育", 1),
    ("resource", "worker", "编程科普课", "公司工程师带孩子们动手做小机器人。", "文化教育", 2),
)


async def _seed_wishes(demo: Demo) -> None:
    resident, staff = demo.users["resident"], demo.users["staff"]
    for title, description, category, approved, claimer in DEMO_WISHES:
        if resident.community_id is None or await Wish.exists(poster_id=resident.id, title=title):
            continue
        wish = await wishes_service.submit_wish(
            user=resident,
            data=WishIn(
                community_id=resident.community_id,
                title=title,
                description=description,
                category=category,
            ),
        )
        if approved:
            await wishes_service.review_wish(actor=staff, wish_id=wish.id, approve=True)
        if claimer:
            await wishes_service.claim_wish(user=demo.users[claimer], wish_id=wish.id)
    for kind, persona, title, description, category, quantity in DEMO_BOARD:
        user = demo.users[persona]
        owner = user.community_id if kind == "need" else user.unit_id
        if owner is None or await BoardItem.exists(created_by_id=user.id, title=title):
            continue
        await wishes_board.publish_item(
            actor=user,
            data=BoardItemIn(
                kind=kind,
                community_id=owner if kind == "need" else None,
                unit_id=owner if kind == "resource" else None,
                title=title,
                description=description,
                category=category,
                quantity=quantity,
            ),
        )


# --- activities: the 午间一小时 lunchtime classes ---

# (title, description, capacity, waitlist, days from today, mode)
DEMO_CLASSES = (
    ("舞韵瑜伽", "午休一小时的舒展瑜伽，自带瑜伽垫。", 30, 20, 7, "first_come"),
    ("茶文化", "认识六大茶类，学习泡一杯好茶。", 20, 10, 8, "first_come"),
    ("剪纸", "海派剪纸入门，作品可带走。", 15, 5, 9, "first_come"),
    ("西式烘焙", "动手做司康饼，名额少，报名截止后公开抽签。", 12, 6, 10, "draw"),
)


async def _seed_activities(demo: Demo) -> None:
    community = demo.communities["hengfeng"]
    zone = local_zone()
    today = local_today()
    for title, description, capacity, waitlist, days, mode in DEMO_CLASSES:
        if await Activity.exists(community_id=community.id, title=title):
            continue
        starts = datetime.combine(today + timedelta(days=days), time(12, 0), zone)
        await activity_catalogue.create_activity(
            actor=demo.users["street_admin"],
            data=ActivityIn(
                community_id=community.id,
                title=title,
                category="午间一小时",
                description=description,
                location="恒丰商务楼 3 楼邻里汇",
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
                capacity=capacity,
                waitlist_capacity=waitlist,
                booking_opens_at=clock.now() - timedelta(hours=1),
                booking_closes_at=starts - timedelta(days=1),
                cancel_deadline=starts - timedelta(hours=3),
                audience=["worker", "resident"],
                community_ids=[c.id for c in demo.communities.values()],
                points=5,
                mode=mode,
                high_demand=mode == "draw" or capacity >= 30,
            ),
        )


# --- notices: what the notice page shows on a fresh demo ---

# (persona who publishes, community slug or None for the whole street, title, body)
DEMO_NOTICES = (
    (
        "street_admin",
        None,
        "汛期防汛防台安全提示",
        "进入汛期，请居民关好门窗、收好阳台花盆等高空物品；\n"
        "遇积水请绕行，不要触碰倒伏的电线。如需帮助请联系所在居委会。",
    ),
    (
        "staff",
        "xinfukangli",
        "二次供水设施清洗停水通知",
        "本周六 9:00–15:00 清洗小区二次供水设施，届时停水，请提前储水。\n"
        "恢复供水后如水质浑浊，请放水片刻再使用。",
    ),
)


async def _seed_notices(demo: Demo) -> None:
    for persona, slug, title, body in DEMO_NOTICES:
        community = demo.communities[slug] if slug else None
        if await Notice.exists(title=title, community_id=community.id if community else None):
            continue
        await notices_service.create_notice(
            actor=demo.users[persona],
            data=NoticeIn(
                community_id=community.id if community else None,
                street_id=demo.street.id,
                title=title,
                body=body,
            ),
        )


# --- party members (在职党员): posts and the demo member's approved report-in ---

# (community slug, kind, title, capacity, skills, description)
DEMO_POSTS = (
    ("huaqin", "post", "绿化养护岗", 5, ("环境绿化",), "每周六上午养护小区绿地。"),
    ("huaqin", "post", "“六乱”监督岗", 4, ("文明劝导", "治安巡逻"), "劝导乱停车、乱堆物。"),
    ("huaqin", "post", "垃圾分类指导岗", 3, ("垃圾分类",), "早晚投放时段在垃圾箱房值守指导。"),
    ("huaqin", "task", "社区大扫除", 0, (), "每月最后一个周六，全员参与。"),
    ("xinfukangli", "post", "文明劝导岗", 5, ("文明劝导",), "节假日在弄堂口开展文明劝导。"),
    ("xinfukangli", "post", "助老帮困岗", 3, ("助老帮困",), "结对独居老人，每周上门探望。"),
)


async def _seed_party(demo: Demo) -> None:
    term = party_hours.current_term()
    posts: dict[str, ServicePost] = {}
    for slug, kind, title, capacity, skills, description in DEMO_POSTS:
        community = demo.communities[slug]
        post = await ServicePost.get_or_none(community_id=community.id, term=term, title=title)
        if post is None:
            post = await party_posts.create_post(
                actor=demo.users["street_admin"],
                data=PostIn(
                    community_id=community.id,
                    title=title,
                    term=term,
                    capacity=capacity,
                    description=description,
                    skills=list(skills),
                    kind=kind,
                ),
            )
        posts[title] = post
    member = demo.users["party_member"]
    if member.community_id is None or await PartyRegistration.exists(user_id=member.id):
        return
    registration = await party_registrations.register(
        user=member,
        data=RegistrationIn(
            name=member.nickname,
            phone="13800000002",
            work_unit="静安区税务局",
            party_org="静安区税务局机关党委",
            party_org_contact="王书记",
            community_id=member.community_id,
            address="8号楼",
            skills=["环境绿化", "法律咨询"],
            available_times=["周六"],
        ),
    )
    await party_registrations.review_registration(
        actor=demo.users["street_admin"],
        registration_id=registration.id,
        data=ReviewIn(approve=True),
    )
    await party_posts.claim_post(user=member, post_id=posts["绿化养护岗"].id)


# --- points: rewards in every community's shop ---

# (title, description, cost, stock, per-user limit, pickup place)
DEMO_REWARDS = (
    ("环保购物袋", "可折叠帆布袋，买菜更方便。", 30, 20, 2, "居委会一楼服务窗口"),
    ("清风抽纸（一提）", "三层抽纸 6 包。", 20, 50, 3, "居委会一楼服务窗口"),
    ("社区理发券", "社区便民理发点通用，一次。", 80, 10, 1, "居委会社工办公室"),
    ("基础体检套餐", "社区卫生服务中心基础体检一次。", 500, 2, 1, "石门二路社区卫生服务中心"),
)


async def _seed_rewards(demo: Demo) -> None:
    admin = demo.users["street_admin"]
    for community in demo.communities.values():
        for title, description, cost, stock, limit, place in DEMO_REWARDS:
            if await Reward.exists(community_id=community.id, title=title):
                continue
            await points_rewards.create_reward(
                actor=admin,
                data=RewardIn(
                    community_id=community.id,
                    title=title,
                    description=description,
                    cost=cost,
                    stock=stock,
                    per_user_limit=limit,
                    pickup_place=place,
                ),
            )


async def run_seed_demo(settings: Settings) -> str:
    """Create the demo data that is missing (idempotent) and say what is there."""
    await init_db(settings)
    try:
        demo = await _seed_orgs()
        await _seed_personas(demo, settings)
        await _seed_points(demo)
        await _seed_wishes(demo)
        await _seed_activities(demo)
        await _seed_notices(demo)
        await _seed_party(demo)
        await _seed_rewards(demo)
    finally:
        await close_db()
    personas = "、".join(f"{p.nickname}（demo-{p.key}）" for p in PERSONAS)
    return (
        f"{STREET[1]}：{len(COMMUNITIES)} 个居民区、{len(BUILDINGS)} 栋楼宇、"
        f"{len(UNITS)} 家驻区单位；演示身份 {personas} "
        f"(street {STREET[0]}: {len(COMMUNITIES)} communities, {len(BUILDINGS)} buildings, "
        f"{len(UNITS)} units, {len(PERSONAS)} personas)"
    )
