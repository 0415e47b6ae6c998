"""The outbox relay: claim due rows under a lease, render, send, record what happened.

Statuses of an outbox row:
- pending  waiting for its first send (also after a 45009 deferral, with a later available_at)
- retry    a transient failure happened, tried again at available_at (backoff with jitter)
- sent     WeChat or WeCom accepted it (sent_at)
- skipped  nothing to send: the user has no usable channel (in-app only)
- refused  WeChat answered 43101 (user refused), remembered in DeliveryRefusal
- failed   retrying cannot help (bad errcode, template, recipient) or attempts used up
A message that crashes the renderer or a channel for an unforeseen reason fails alone (the
exception's type in last_error) and the rest of its batch goes out. Redis not answering
(token cache, pacing) is not the message's fault: the row waits a few seconds without
spending an attempt.

Only pending and retry rows are ever claimed. A row is claimed by setting lease_owner
and leased_until; an expired lease is free again, so a crashed relay's rows come back
(delivery is at least once: only the messages in flight can repeat).

Subscribe-message consents: one is taken (one guarded statement) before the send and
given back whenever WeChat did not deliver, so only an accepted message spends one.
A 43101 means WeChat holds no acceptance at all, so the count drops to zero instead.
The consent taken is held for its row: when a crash or a lost lease makes the row go
out again, the repeat uses the same consent instead of taking (or missing) another.

Throughput: a batch reads its recipients' identities and refusals once, renders equal
messages once and records its outcomes with one UPDATE per kind of outcome; the WeChat
sends go out a few at a time, paced per app across processes (`wechat_sends_per_second`),
and each WeCom group robot gets at most `wecom_robot_per_minute` messages a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.exceptions import BaseORMException
from tortoise.expressions import F, Q, Subquery
from tortoise.transactions import in_transaction

from backend.accounts.models import WechatIdentity
from backend.core import metrics
from backend.core.clock import clock
from backend.core.config import Settings
from backend.core.db import is_postgres
from backend.core.models import OutboxMessage
from backend.core.redis import KeyValueUnavailable, get_kv
from backend.notices import consents as notices_consents
from bot.channels import ChannelError, Channels
from bot.render import Rendered, RenderError, render

log = logging.getLogger("linli.bot.relay")

# The claimable statuses, retries first: they are due already and few, and a long
# fan-out must not starve them.
CLAIM_ORDER = ("retry", "pending")
FINAL_STATUSES = ("sent", "skipped", "refused", "failed")
USER_CHANNELS = ("subscribe", "template")
KIND_MINIPROGRAM = "miniprogram"
KIND_OFFICIAL_ACCOUNT = "official_account"

RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
RETRY_JITTER = 0.25
SEND_CONCURRENCY = 16
# A send is not started this close to the end of its lease (a quarter of a short lease):
# another relay may take the row the moment the lease ends and send it a second time.
LEASE_SAFETY_SECONDS = 10.0
# WeChat resets daily quotas at midnight Beijing time; a few minutes later is safe.
QUOTA_RESUME_AT = time(0, 5)


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to. `status` is a row status, or "defer"/"release"."""

    status: str
    channel: str | None = None
    error: str | None = None
    # For "defer": when to try again (None: tomorrow, after WeChat's daily quota resets).
    resume_at: datetime | None = None

    @property
    def counts_as_attempt(self) -> bool:
        return self.status in ("sent", "refused", "failed", "retry")


def retry_delay(attempts: int) -> timedelta:
    """Backoff after `attempts` failed tries: 30 s doubling to an hour, plus up to 25 %."""
    base = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return timedelta(seconds=base * (1 + random.uniform(0, RETRY_JITTER)))


def quota_resume_at(now: datetime, timezone: str) -> datetime:
    """Tomorrow 00:05 local time: when a 45009 (daily quota) row is tried again."""
    zone = ZoneInfo(timezone)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, QUOTA_RESUME_AT, tzinfo=zone).astimezone(UTC)


def _now() -> datetime:
    # SQLite compares datetimes as text, so every value written or compared is in UTC.
    return clock.now().astimezone(UTC)


def _process_owner() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _channel_failure(exc: ChannelError, channel: str) -> Outcome:
    error = f"{channel}: {exc}"
    status = {"transient": "retry", "quota": "defer", "refused": "refused"}.get(exc.kind, "failed")
    return Outcome(status, channel, error)


class Relay:
    """Sends due outbox rows. Several relays (processes) may run against one database."""

    def __init__(self, settings: Settings, *, channels: Channels | None = None) -> None:
        self.settings = settings
        self.owner = _process_owner()
        self.channels = channels or Channels(settings)

    async def aclose(self) -> None:
        await self.channels.aclose()

    async def run_once(self, limit: int | None = None) -> int:
        """Claim and deliver one batch; returns how many rows were claimed."""
        rows = await self.claim(limit or self.settings.outbox_batch_size)
        if rows:
            try:
                await self.deliver_all(rows)
            except Exception as exc:
                # Recording failed (database gone?): the leases run out and the rows come back.
                log.error("outbox batch not recorded: %r", exc, extra={"outbox_id": rows[0].id})
        return len(rows)

    async def backlog(self) -> tuple[int, float]:
        """How many messages are due now, and how long the oldest of them has waited (s)."""
        now = _now()
        due = OutboxMessage.filter(status__in=CLAIM_ORDER, available_at__lte=now)
        count = await due.count()
        oldest = await due.order_by("available_at").values_list("available_at", flat=True).first()
        return count, (now - oldest).total_seconds() if oldest else 0.0

    async def claim(self, limit: int) -> list[OutboxMessage]:
        """Lease up to `limit` due rows to this relay (no other relay gets them meanwhile)."""
        now = _now()
        token = f"{self.owner}/{uuid.uuid4().hex[:8]}"
        lease = {
            "lease_owner": token,
            "leased_until": now + timedelta(seconds=self.settings.outbox_lease_seconds),
        }
        free = Q(available_at__lte=now) & (Q(leased_until__isnull=True) | Q(leased_until__lt=now))

        def due(status: str, wanted: int):
            # One status at a time, so the (status, available_at) index yields the rows in
            # order instead of every due row being sorted for each claim.
            return (
                OutboxMessage.filter(free, status=status)
                .order_by("available_at", "id")
                .limit(wanted)
            )

        if is_postgres():
            rows: list[OutboxMessage] = []
            async with in_transaction():
                for status in CLAIM_ORDER:
                    if len(rows) < limit:
                        rows += await due(status, limit - len(rows)).select_for_update(
                            skip_locked=True
                        )
                if rows:
                    await OutboxMessage.filter(id__in=[r.id for r in rows]).update(**lease)
            for row in rows:
                row.lease_owner, row.leased_until = lease["lease_owner"], lease["leased_until"]
            return rows
        # SQLite has one writer: each conditional UPDATE is a claim, atomic on its own.
        claimed = 0
        for status in CLAIM_ORDER:
            if claimed < limit:
                claimed += await OutboxMessage.filter(
                    free, status=status, id__in=Subquery(due(status, limit - claimed).values("id"))
                ).update(**lease)
        if not claimed:
            return []
        return await OutboxMessage.filter(lease_owner=token).order_by("available_at", "id")

    async def deliver(self, row: OutboxMessage) -> Outcome:
        """Send one claimed row and record the outcome on it."""
        [outcome] = await self.deliver_all([row])
        return outcome

    async def deliver_all(self, rows: list[OutboxMessage]) -> list[Outcome]:
        """Send claimed rows (a few at a time) and record their outcomes.

        Who has which WeChat identity and who refused what is read once for the batch, equal
        messages are rendered once, and the outcomes are written by one UPDATE per kind of
        outcome: a few queries per batch instead of several per message. Consents are still
        spent one guarded statement per message."""
        batch = _Batch(await self._lookups(rows), self.settings.timezone)
        # Consents for the whole batch in one statement per template, each held for its row.
        batch.held = await notices_consents.spend_consents(
            wanted=[
                (row.id, row.user_id, row.template_key)
                for row in rows
                if self._may_subscribe(row, batch)
            ]
        )
        gate = asyncio.Semaphore(SEND_CONCURRENCY)
        safety = min(LEASE_SAFETY_SECONDS, self.settings.outbox_lease_seconds / 4)
        later = _now() + timedelta(seconds=max(1.0, self.settings.redis_pause_seconds))

        async def one(row: OutboxMessage) -> Outcome:
            async with gate:
                if row.leased_until is not None and _now() >= row.leased_until - timedelta(
                    seconds=safety
                ):
                    return Outcome("release")
                try:
                    return await self._send(row, batch)
                except KeyValueUnavailable:
                    # Redis (token cache, pacing) is not the message's fault: come back once
                    # it answers, without spending an attempt.
                    return Outcome("defer", error="store: Redis unavailable", resume_at=later)
                except (BaseORMException, OSError) as exc:
                    log.warning("outbox delivery interrupted: %r", exc, extra={"outbox_id": row.id})
                    return Outcome("retry", error=f"internal: {type(exc).__name__}")
                except Exception as exc:
                    # Something about this one message: it alone fails, the batch goes on.
                    # Only the exception's type is kept, its text may hold the context.
                    log.exception("outbox delivery crashed", extra={"outbox_id": row.id})
                    return Outcome("failed", error=f"internal: {type(exc).__name__}")

        outcomes = list(await asyncio.gather(*(one(row) for row in rows)))
        await self._record(rows, outcomes)
        return outcomes

    async def _lookups(self, rows: list[OutboxMessage]) -> _Lookups:
        user_ids = {row.user_id for row in rows if row.user_id is not None}
        if not user_ids:
            return _Lookups({}, set())
        apps = {
            KIND_MINIPROGRAM: self.settings.mp_appid,
            KIND_OFFICIAL_ACCOUNT: self.settings.oa_appid,
        }
        identities = (
            await WechatIdentity.filter(user_id__in=user_ids, app_id__in=list(apps.values()))
            .order_by("id")
            .values_list("user_id", "kind", "app_id", "openid")
        )
        openids: dict[tuple[int, str], str] = {}
        for user_id, kind, app_id, openid in identities:
            if apps.get(kind) == app_id:
                openids.setdefault((user_id, kind), openid)
        refused = await notices_consents.refusals(user_ids=user_ids)
        return _Lookups(openids, refused)

    def _may_subscribe(self, row: OutboxMessage, batch: _Batch) -> bool:
        """Whether the row would go out as a subscribe message if the user has a consent."""
        user_id, key = row.user_id, row.template_key
        return (
            row.channel in ("user", "subscribe")
            and user_id is not None
            and isinstance(batch.rendered(row), Rendered)
            and bool(self.settings.subscribe_templates.get(key))
            and (user_id, "subscribe", key) not in batch.lookups.refused
            and (user_id, KIND_MINIPROGRAM) in batch.lookups.openids
        )

    async def _send(self, row: OutboxMessage, batch: _Batch) -> Outcome:
        rendered = batch.rendered(row)
        if isinstance(rendered, RenderError):
            return Outcome("failed", error=f"render: {rendered}")
        if row.channel == "wecom":
            return await self._wecom(row, rendered)
        if row.channel not in ("user", *USER_CHANNELS):
            return Outcome("failed", error=f"unknown channel {row.channel!r}")
        user_id = row.user_id
        if user_id is None:
            return Outcome("failed", error=f"{row.channel}: no user_id")
        channels = USER_CHANNELS if row.channel == "user" else (row.channel,)
        passed: list[Outcome] = []
        for channel in channels:
            attempt = self._subscribe if channel == "subscribe" else self._template
            outcome = await attempt(row, user_id, rendered, batch)
            if outcome.status not in ("skipped", "refused"):
                return outcome
            passed.append(outcome)
        refused = [o for o in passed if o.status == "refused"]
        if refused:
            return refused[0]
        return Outcome("skipped", error="; ".join(o.error or "" for o in passed))

    async def _wecom(self, row: OutboxMessage, rendered: Rendered) -> Outcome:
        if not row.recipient:
            return Outcome("failed", "wecom", "wecom: no robot key")
        if not rendered.markdown:
            return Outcome("failed", "wecom", f"render: {row.template_key} has no wecom block")
        wait = await self._robot_turn(row.recipient)
        if wait:
            # Not an attempt: the robot's per-minute budget is used up, come back in a while.
            return Outcome(
                "defer", "wecom", "wecom: robot busy", resume_at=_now() + timedelta(seconds=wait)
            )
        try:
            await self.channels.send_wecom(key=row.recipient, markdown=rendered.markdown)
        except ChannelError as exc:
            return _channel_failure(exc, "wecom")
        return Outcome("sent", "wecom")

    async def _robot_turn(self, key: str) -> float:
        """0 when this robot may send now (its turn is taken), else seconds until it may.

        A robot gets one message per 60/limit seconds across all relays, so no 60-second
        window ever holds more than WeCom's 20, bursts included."""
        spacing = 60.0 / self.settings.wecom_robot_per_minute
        try:
            # The robot key is a credential: only a hash of it goes into the store.
            robot = hashlib.sha256(key.encode()).hexdigest()[:24]
            mine = await get_kv().set(f"wecom-turn:{robot}", self.owner, ttl=spacing, nx=True)
        except Exception:
            # The store only paces: without it, WeCom's own 45009 answer makes us retry later.
            return 0.0
        return 0.0 if mine else spacing

    async def _subscribe(
        self, row: OutboxMessage, user_id: int, rendered: Rendered, batch: _Batch
    ) -> Outcome:
        key = row.template_key
        template_id = self.settings.subscribe_templates.get(key)
        if not template_id:
            return Outcome("skipped", "subscribe", f"subscribe: no template id for {key}")
        if (user_id, "subscribe", key) in batch.lookups.refused:
            return Outcome("skipped", "subscribe", "subscribe: refused earlier")
        openid = batch.lookups.openids.get((user_id, KIND_MINIPROGRAM))
        if openid is None:
            return Outcome("skipped", "subscribe", "subscribe: no mini-program identity")
        if row.id not in batch.held:
            return Outcome("skipped", "subscribe", "subscribe: no consent left")
        try:
            await self.channels.send_subscribe(
                openid=openid,
                template_id=template_id,
                data=rendered.wechat_data(),
                page=rendered.page,
            )
        except ChannelError as exc:
            if exc.kind == "refused":
                await notices_consents.record_refusal(
                    user_id=user_id, channel="subscribe", template_key=key
                )
            else:
                await notices_consents.return_consent(
                    user_id=user_id, template_key=key, hold_for=row.id
                )
            return _channel_failure(exc, "subscribe")
        return Outcome("sent", "subscribe")

    async def _template(
        self, row: OutboxMessage, user_id: int, rendered: Rendered, batch: _Batch
    ) -> Outcome:
        lookups = batch.lookups
        key = row.template_key
        template_id = self.settings.oa_templates.get(key)
        if not template_id:
            return Outcome("skipped", "template", f"template: no template id for {key}")
        if (user_id, "template", key) in lookups.refused:
            return Outcome("skipped", "template", "template: refused earlier")
        openid = lookups.openids.get((user_id, KIND_OFFICIAL_ACCOUNT))
        if openid is None:
            return Outcome("skipped", "template", "template: no official-account identity")
        url = rendered.url
        if url and url.startswith("/"):
            url = self.settings.public_base_url.rstrip("/") + url
        try:
            await self.channels.send_template(
                openid=openid, template_id=template_id, data=rendered.wechat_data(), url=url
            )
        except ChannelError as exc:
            if exc.kind == "refused":
                await notices_consents.record_refusal(
                    user_id=user_id, channel="template", template_key=key
                )
            return _channel_failure(exc, "template")
        return Outcome("sent", "template")

    def _changes(self, row: OutboxMessage, outcome: Outcome, now: datetime) -> dict[str, Any]:
        changes: dict[str, Any] = {"lease_owner": None, "leased_until": None}
        status = outcome.status
        if outcome.error is not None:
            changes["last_error"] = outcome.error[:255]
        if status == "sent":
            changes.update(status="sent", sent_at=now)
        elif status == "retry":
            if row.attempts + 1 >= self.settings.outbox_max_attempts:
                changes["status"] = "failed"
            else:
                changes.update(status="retry", available_at=now + retry_delay(row.attempts + 1))
        elif status == "defer":
            changes["available_at"] = outcome.resume_at or quota_resume_at(
                now, self.settings.timezone
            )
        elif status in FINAL_STATUSES:
            changes["status"] = status
        return changes

    async def _record(self, rows: list[OutboxMessage], outcomes: list[Outcome]) -> None:
        """Write the outcomes: rows whose changes are equal share one UPDATE."""
        now = _now()
        groups: dict[tuple, list[tuple[OutboxMessage, Outcome]]] = {}
        for row, outcome in zip(rows, outcomes, strict=True):
            changes = self._changes(row, outcome, now)
            key = (row.lease_owner, outcome.counts_as_attempt, tuple(sorted(changes.items())))
            groups.setdefault(key, []).append((row, outcome))
        for (lease_owner, attempted, items), members in groups.items():
            changes = dict(items)
            if attempted:
                changes["attempts"] = F("attempts") + 1
            # Only the lease holder records: a relay that lost its lease must not overwrite.
            updated = await OutboxMessage.filter(
                id__in=[row.id for row, _ in members], lease_owner=lease_owner
            ).update(**changes)
            for row, outcome in members:
                self._log(row, outcome, changes.get("status", "pending"))
            if updated < len(members):
                log.warning(
                    "outbox: %d of %d rows were recorded, the others' lease was lost",
                    updated,
                    len(members),
                    extra={"outbox_id": members[0][0].id},
                )

    def _log(self, row: OutboxMessage, outcome: Outcome, status: str) -> None:
        shown = outcome.status if outcome.status in ("defer", "release") else status
        channel = outcome.channel or row.channel
        if outcome.status != "release":
            metrics.OUTBOX_SENT.labels(channel, shown).inc()
        level = logging.WARNING if shown in ("failed", "refused") else logging.INFO
        log.log(
            level,
            "outbox %s via %s%s",
            shown,
            channel,
            f" ({outcome.error})" if outcome.error else "",
            extra={"outbox_id": row.id, "user_id": row.user_id},
        )


@dataclass(frozen=True)
class _Lookups:
    """What a batch needs to know about its recipients, read once."""

    openids: dict[tuple[int, str], str]  # (user id, identity kind) -> openid
    refused: set[tuple[int, str, str]]  # (user id, channel, template key)


class _Batch:
    """One batch's lookups, its rendered messages (a notice renders once, not per row) and
    the rows holding a subscribe consent."""

    def __init__(self, lookups: _Lookups, timezone: str) -> None:
        self.lookups = lookups
        self.held: set[int] = set()
        self._timezone = timezone
        self._now = _now()
        self._rendered: dict[tuple[str, str], Rendered | RenderError] = {}

    def rendered(self, row: OutboxMessage) -> Rendered | RenderError:
        key = (row.template_key, json.dumps(row.context, sort_keys=True, default=str))
        if key not in self._rendered:
            try:
                self._rendered[key] = render(
                    row.template_key, row.context, now=self._now, timezone=self._timezone
                )
            except RenderError as exc:
                self._rendered[key] = exc
            except Exception as exc:
                # A context the template chokes on in an unforeseen way fails its own row,
                # not the batch (rendering happens before any send, for the whole batch).
                log.exception("outbox render crashed", extra={"outbox_id": row.id})
                self._rendered[key] = RenderError(f"{row.template_key}: {type(exc).__name__}")
        return self._rendered[key]
