"""Cross-cutting tables: the transactional outbox, idempotency records and usage counters."""

from tortoise import fields
from tortoise.models import Model


class OutboxMessage(Model):
    """A message to send, written in the same transaction as the change it reports."""

    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=32)  # user | subscribe | template | wecom
    template_key = fields.CharField(max_length=64)
    user_id = fields.BigIntField(null=True, db_index=True)
    recipient = fields.CharField(max_length=255, null=True)
    context = fields.JSONField(default=dict)
    dedupe_key = fields.CharField(max_length=255, unique=True)
    # pending | retry (claimable) → sent | skipped | refused | failed (final): see bot/relay.py
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    attempts = fields.IntField(default=0)
    available_at = fields.DatetimeField(db_index=True)
    leased_until = fields.DatetimeField(null=True)
    lease_owner = fields.CharField(max_length=64, null=True)
    last_error = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_message"
        indexes = (("status", "available_at"),)


class IdempotencyRecord(Model):
    """First response to a (user, Idempotency-Key), replayed for retries."""

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=64)
    key = fields.CharField(max_length=255)
    request_hash = fields.CharField(max_length=64)
    status = fields.CharField(max_length=16, default="running")  # running | done
    response_status = fields.IntField(null=True)
    response_body = fields.TextField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_record"
        unique_together = (("scope", "key"),)


class UsageCounter(Model):
    """How often a person did something in one window (a local day, a lockout window),
    moved only by backend.core.quota's guarded statements so a cap holds across processes."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=128)
    # The window: a local date ("2026-12-03") or a numbered period ("w:1234").
    bucket = fields.CharField(max_length=32)
    count = fields.IntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "usage_counter"
        unique_together = (("key", "bucket"),)
