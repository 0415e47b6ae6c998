"""在职党员报到: registrations, service posts and their holders, service records.

Every rule that two requests could race on is a unique key or one guarded UPDATE in the
party services (registrations, posts, records): one active registration per person
(`active_key`), one post per member and term (`term_key`), post capacity
(`taken <= capacity`), one open check-in per person (`open_key`).
"""

from tortoise import fields
from tortoise.models import Model

# pending → approved | rejected, approved → rejected (staff take it back), pending or
# approved → ended (the member moved to another community or withdrew).
REGISTRATION_STATUSES = ("pending", "approved", "rejected", "ended")
ACTIVE_REGISTRATION_STATUSES = ("pending", "approved")
REGISTRATION_STATUS_NAMES = {
    "pending": "待审核",
    "approved": "已报到",
    "rejected": "未通过",
    "ended": "已结束",
}
TIME_SLOTS = ("工作日白天", "工作日晚上", "周六", "周日", "节假日")

# post: members claim it (capacity, one per term). task: a community task any approved
# member of the community may check in to, nobody holds it.
POST_KINDS = ("post", "task")
POST_STATUSES = ("active", "closed")
ASSIGNMENT_STATUSES = ("active", "released", "removed")

# open → closed (check-out, or made by staff), open → expired (forgotten: no minutes until
# staff correct it).
RECORD_STATUSES = ("open", "closed", "expired")
RECORD_SOURCES = ("qr", "offline")


class PartyRegistration(Model):
    """One report-in (报到) of a party member to the community where they live.

    `active_key` is "u<user id>" while pending or approved and NULL afterwards, so a unique
    key allows one active registration per person beside any number of ended ones.
    """

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="party_registrations")
    community = fields.ForeignKeyField("linli.Community", related_name="party_registrations")
    name = fields.CharField(max_length=32)
    phone_encrypted = fields.TextField()
    phone_index = fields.CharField(max_length=64, db_index=True)
    work_unit = fields.CharField(max_length=64, db_index=True)
    party_org = fields.CharField(max_length=64)
    party_org_contact = fields.CharField(max_length=32, default="")
    party_org_phone_encrypted = fields.TextField(null=True)
    # Where in the community they live (楼号/门牌), free text.
    address = fields.CharField(max_length=64, default="")
    skills = fields.JSONField(default=list)
    skills_note = fields.CharField(max_length=128, default="")
    # The skills as "|a|b|": a roster filter by skill is then a plain LIKE on any database.
    skills_text = fields.CharField(max_length=400, default="")
    preferred_post_ids = fields.JSONField(default=list)
    available_times = fields.JSONField(default=list)
    available_note = fields.CharField(max_length=128, default="")
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    active_key = fields.CharField(max_length=32, null=True, unique=True)
    review_reason = fields.CharField(max_length=200, default="")
    reviewed_by = fields.ForeignKeyField(
        "linli.User", related_name="party_registrations_reviewed", null=True
    )
    reviewed_at = fields.DatetimeField(null=True)
    approved_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    end_reason = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "party_registration"
        indexes = (("community_id", "status"),)


class ServicePost(Model):
    """A service post (岗位 / 文明示范岗) or community task of one community and term (year).

    `taken` counts active holders and changes only by guarded UPDATEs: taken <= capacity.
    """

    id = fields.BigIntField(primary_key=True)
    community = fields.ForeignKeyField("linli.Community", related_name="party_posts")
    term = fields.IntField()
    kind = fields.CharField(max_length=8, default="post")
    title = fields.CharField(max_length=64)
    description = fields.TextField(default="")
    location = fields.CharField(max_length=64, default="")
    skills = fields.JSONField(default=list)
    capacity = fields.IntField(default=0)
    taken = fields.IntField(default=0)
    # Service hours, in minutes after local midnight: QR check-in is accepted only then.
    open_from = fields.IntField(default=7 * 60)
    open_until = fields.IntField(default=21 * 60)
    status = fields.CharField(max_length=8, default="active")
    created_by = fields.ForeignKeyField("linli.User", related_name="party_posts_created", null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "party_post"
        indexes = (("community_id", "term"),)


class PostAssignment(Model):
    """A member holding a post for its term (claimed, or assigned by staff).

    `term_key` is "<user id>:<term>" while active and NULL afterwards: one post per member
    per term by a unique key.
    """

    id = fields.BigIntField(primary_key=True)
    post = fields.ForeignKeyField("linli.ServicePost", related_name="assignments")
    user = fields.ForeignKeyField("linli.User", related_name="party_assignments")
    community = fields.ForeignKeyField("linli.Community", related_name="party_assignments")
    term = fields.IntField()
    status = fields.CharField(max_length=16, default="active")
    term_key = fields.CharField(max_length=40, null=True, unique=True)
    assigned_by = fields.ForeignKeyField(
        "linli.User", related_name="party_assignments_made", null=True
    )
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    ended_by = fields.ForeignKeyField(
        "linli.User", related_name="party_assignments_ended", null=True
    )
    end_reason = fields.CharField(max_length=200, default="")

    class Meta:
        table = "party_post_assignment"
        indexes = (("post_id", "status"), ("user_id", "status"))


class ServiceRecord(Model):
    """One stint of service at a post or task, by QR check-in/out or added by staff.

    `minutes` is what counts (each local day capped), `raw_minutes` the time between
    start and end. `open_key` is "u<user id>" while open: one open check-in per person.
    """

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("linli.User", related_name="party_service_records")
    community = fields.ForeignKeyField("linli.Community", related_name="party_service_records")
    post = fields.ForeignKeyField("linli.ServicePost", related_name="records", null=True)
    task = fields.CharField(max_length=64, default="")
    source = fields.CharField(max_length=8, default="qr")
    status = fields.CharField(max_length=8, default="open", db_index=True)
    open_key = fields.CharField(max_length=32, null=True, unique=True)
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    raw_minutes = fields.IntField(default=0)
    minutes = fields.IntField(default=0)
    points = fields.IntField(default=0)
    note = fields.CharField(max_length=200, default="")
    created_by = fields.ForeignKeyField(
        "linli.User", related_name="party_service_records_made", null=True
    )
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "party_service_record"
        indexes = (("community_id", "status"), ("user_id", "started_at"))


class ServiceRecordDay(Model):
    """The minutes one record credits on one local (Asia/Shanghai) day, after the day cap.

    Hours per member, post, community and date range are sums of these rows.
    """

    id = fields.BigIntField(primary_key=True)
    record = fields.ForeignKeyField("linli.ServiceRecord", related_name="days")
    user = fields.ForeignKeyField("linli.User", related_name="party_service_days")
    community = fields.ForeignKeyField("linli.Community", related_name="party_service_days")
    post = fields.ForeignKeyField("linli.ServicePost", related_name="service_days", null=True)
    service_date = fields.DateField()
    minutes = fields.IntField()

    class Meta:
        table = "party_service_day"
        unique_together = (("record", "service_date"),)
        indexes = (("user_id", "service_date"), ("community_id", "service_date"))


class ServiceRecordAudit(Model):
    """Who changed a service record, when, why, and what it was before and after."""

    id = fields.BigIntField(primary_key=True)
    record = fields.ForeignKeyField("linli.ServiceRecord", related_name="audits")
    actor = fields.ForeignKeyField("linli.User", related_name="party_record_audits", null=True)
    # created (offline record) | corrected | expired
    action = fields.CharField(max_length=16)
    reason = fields.CharField(max_length=200, default="")
    before = fields.JSONField(null=True)
    after = fields.JSONField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "party_service_audit"
        ordering = ("id",)
