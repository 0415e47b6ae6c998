"""The bot: the outbox relay and the scheduler, as tasks in the running event loop.

`linli bot` runs it as a process of its own (stops cleanly on SIGTERM/SIGINT, finishing
the batch in flight); `linli run` starts it inside the app process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from backend.core import metrics
from backend.core.config import Settings
from bot.relay import Relay
from bot.scheduler import Scheduler

log = logging.getLogger("linli.bot")

SCHEDULER_TICK_SECONDS = 1.0
# How often the backlog gauges (/metrics) are brought up to date.
BACKLOG_SECONDS = 5.0
# Batches in flight at once: while one lane waits for the database (claiming, recording),
# the other's messages are on their way to WeChat.
RELAY_LANES = 2


class BotRunner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.relay = Relay(settings)
        self.scheduler = Scheduler(settings)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the relay and scheduler loops as background tasks of the running loop."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._relay_loop(), name=f"linli-bot-relay-{lane}")
            for lane in range(RELAY_LANES)
        ]
        self._tasks.append(loop.create_task(self._scheduler_loop(), name="linli-bot-scheduler"))
        self._tasks.append(loop.create_task(self._backlog_loop(), name="linli-bot-backlog"))
        log.info("bot started (%s)", self.relay.owner)

    async def stop(self) -> None:
        """Let the batch in flight finish (up to one lease), then stop."""
        self._stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.settings.outbox_lease_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        await self.relay.aclose()
        log.info("bot stopped")

    async def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self._stopping.set)
        self.start()
        try:
            await self._stopping.wait()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self.stop()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _relay_loop(self) -> None:
        batch = self.settings.outbox_batch_size
        while not self._stopping.is_set():
            try:
                claimed = await self.relay.run_once(batch)
            except Exception:
                # The database may be restarting: leases expire, so nothing is lost.
                log.exception("relay batch failed")
                claimed = 0
            if claimed < batch:
                await self._pause(self.settings.bot_poll_seconds)

    async def _backlog_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                due, oldest = await self.relay.backlog()
                metrics.OUTBOX_DUE.set(due)
                metrics.OUTBOX_OLDEST_DUE_SECONDS.set(oldest)
            except Exception:
                log.exception("outbox backlog not measured")
            await self._pause(BACKLOG_SECONDS)

    async def _scheduler_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.scheduler.run_due()
            except Exception:
                log.exception("scheduler round failed")
            await self._pause(SCHEDULER_TICK_SECONDS)
