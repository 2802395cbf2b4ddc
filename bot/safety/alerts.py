"""Alerting staff to new handoffs through a webhook (Slack/Teams incoming webhook).

``HANDOFF_WEBHOOK_URL`` receives a JSON POST per handoff: the handoff's id,
level and channel and the command that opens it, never the patient's message.
Each alert is tried a few times with backoff; a failure is recorded on the
handoff and retried later (with growing delays) until it is delivered.

``python -m bot.safety.alerts`` is the worker that does this, a process of its
own (``make run`` starts it): it alerts staff even while the action server is
down, when the channels spool crisis handoffs themselves. Each round it also
moves spooled handoffs into the database once it is back, and makes a crisis
of every direct safety question left unanswered. Rounds come every
``HANDOFF_RETRY_INTERVAL_S``; several workers (replicas) may run, each alert
being reserved by one of them.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time

import requests
from sqlalchemy.exc import SQLAlchemyError

from bot import settings
from bot.safety.handoffs import Handoff, HandoffQueue

logger = logging.getLogger(__name__)

QUICK_RETRY_DELAYS_S = (0.5, 1.0)  # within one attempt: 3 tries in all
RETRY_LATER_FACTORS = (1, 2, 4, 8, 20, 40)  # x HANDOFF_RETRY_BASE_S (default 15 s)
RESERVATION_S = 60


def retry_delay(failed_attempts: int) -> float:
    """Seconds until the next try after ``failed_attempts`` failed ones."""
    base = settings.load().handoff_retry_base_s
    return (
        base * RETRY_LATER_FACTORS[min(failed_attempts, len(RETRY_LATER_FACTORS) - 1)]
    )


def alert_payload(handoff: Handoff) -> dict[str, str]:
    command = f"python -m bot.staff show {handoff.id}"
    urgency = "URGENT crisis" if handoff.level == "crisis" else "Mood concern"
    return {
        "text": (
            f"{urgency} handoff {handoff.id[:8]} from the {handoff.channel} channel. "
            f"Open it with: {command}"
        ),
        "handoff_id": handoff.id,
        "level": handoff.level,
        "channel": handoff.channel,
        "created_at": handoff.created_at.isoformat(),
        "command": command,
    }


class StaffNotifier:
    def __init__(
        self,
        queue: HandoffQueue,
        url: str | None = None,
        timeout_s: float = 5.0,
        quick_retry_delays: tuple[float, ...] = QUICK_RETRY_DELAYS_S,
    ) -> None:
        self.queue = queue
        self.url = url if url is not None else settings.load().handoff_webhook_url
        self.timeout_s = timeout_s
        self.quick_retry_delays = quick_retry_delays

    def send(self, handoff: Handoff) -> str | None:
        """POST the alert; None when delivered, else the last error."""
        error = "not sent"
        for delay in (0.0, *self.quick_retry_delays):
            time.sleep(delay)
            try:
                response = requests.post(
                    self.url, json=alert_payload(handoff), timeout=self.timeout_s
                )
                if 200 <= response.status_code < 300:
                    return None
                error = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                error = exc.__class__.__name__
        return error

    def notify_due(self) -> int:
        """Send every alert that is due; returns how many were delivered.

        Unanswered safety questions are escalated first, so their urgent
        alert goes out in the same round.
        """
        self.queue.replay_spool()
        delivered = self._notify_spooled()
        try:
            self.queue.escalate_unanswered(settings.load().safety_answer_timeout_s)
        except SQLAlchemyError as error:
            logger.error("unanswered safety questions not checked (%s)",
                         error.__class__.__name__)  # fmt: skip
            return delivered
        if not self.url:
            return delivered
        for handoff in self.queue.due_for_notification():
            if not self.queue.reserve_notification(handoff.id, RESERVATION_S):
                continue  # another replica has it
            error = self.send(handoff)
            retry_in = retry_delay(handoff.notify_attempts)
            self.queue.record_notification(
                handoff.id, error, retry_in, level=handoff.level
            )
            if error:
                logger.warning(
                    "staff alert for handoff %s failed (%s); retrying in %.0f s",
                    handoff.id,
                    error,
                    retry_in,
                )
            else:
                delivered += 1
        return delivered

    def _notify_spooled(self) -> int:
        """Alert staff to handoffs still in the spool (the database is down):
        the alert must not wait for the database to come back."""
        if not self.url:
            return 0
        delivered = 0
        for handoff in self.queue.spooled():
            if handoff.notified_at is not None:
                continue
            error = self.send(handoff)
            if error is None:
                self.queue.mark_spooled_notified(handoff.id)
                delivered += 1
            else:
                logger.warning(
                    "staff alert for spooled handoff %s failed (%s)", handoff.id, error
                )
        return delivered


def run(notifier: StaffNotifier, interval_s: float, stop: threading.Event) -> None:
    """A round of alerts every ``interval_s`` until ``stop`` is set."""
    if not notifier.url:
        logger.warning(
            "HANDOFF_WEBHOOK_URL is not set: staff are not alerted; "
            "they see handoffs with `make handoffs`"
        )
    while not stop.is_set():
        try:
            notifier.notify_due()
        except Exception:  # keep alerting whatever one round hit
            logger.exception("a round of staff alerts failed")
        stop.wait(interval_s)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    config = settings.load()
    run(StaffNotifier(HandoffQueue()), config.handoff_retry_interval_s, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
