"""The notices' scheduler job: publish due notices and fan them out to the outbox."""

from __future__ import annotations

import logging

from backend.core.config import Settings
from backend.notices import service as notices_service

log = logging.getLogger("linli.bot.notices")

# Cheap when there is nothing to do (one indexed query), and a notice goes out promptly.
FANOUT_EVERY_SECONDS = 1.0


async def fan_out_notices(settings: Settings) -> None:
    written = await notices_service.fan_out_notices(
        batch_size=settings.notice_fanout_batch_size,
        max_batches=settings.notice_fanout_max_batches,
    )
    if written:
        log.info("notice fan-out wrote %d outbox rows", written)
