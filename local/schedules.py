"""The template's every-few-minutes schedules, run locally by `make run`.

A function whose ScheduleV2 expression is a rate (the analytics refresh of the learners a
platform's batches noted: rate(1 minute)) runs in a thread of `make run` every LOCAL_PERIOD
seconds (MS8_SCHEDULE_SECONDS, default 10: quicker than on AWS, so a batch sent by hand shows
in the learner's numbers within seconds). Daily and hourly jobs (cron expressions, or rates of
an hour and more) stay by hand: `python -m local.invoke <function> events/<name>.json`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from local import runtime, template

LOCAL_PERIOD = float(os.environ.get("MS8_SCHEDULE_SECONDS", "10"))


def frequent() -> list[template.Function]:
    """The functions scheduled at a rate of under an hour."""
    return [s.function for s in template.schedules() if (s.rate_seconds or 3600) < 3600]


class Ticker:
    """Runs the frequent scheduled functions one after the other every `period` seconds."""

    def __init__(self, log: Callable[[str], None], period: float = LOCAL_PERIOD) -> None:
        self.functions = frequent()
        self.period = period
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schedules", daemon=True)

    def start(self) -> None:
        if self.functions:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def tick(self) -> None:
        """One round: each function once, as the Scheduler would invoke it."""
        event = {"scheduledTime": datetime.now(UTC).isoformat(timespec="seconds")}
        for function in self.functions:
            try:
                runtime.invoke(function, event)
            except Exception as exc:  # a failed run is logged; the next round tries again, as on AWS
                self.log(f"schedule: {function.logical_id} failed: {exc}")

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.tick()
