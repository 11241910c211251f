"""The template's every-few-minutes schedules, run locally by `make run`.

A function whose ScheduleV2 expression is a rate of under an hour (the analytics refresh of the
learners a platform's batches noted: rate(1 minute)) runs every LOCAL_PERIOD seconds
(MS8_SCHEDULE_SECONDS, default 10: quicker than on AWS, so a batch sent by hand shows in the
learner's numbers within seconds). `make run` starts this module as a process of its own, with
the environment the template gives those functions (the owner's URL: the API functions in the
gateway never get it). Daily and hourly jobs (cron expressions) stay by hand:
`python -m local.invoke <function> events/<name>.json`.

    python -m local.schedules [--s3 URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local import runtime, stack, template

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
        self.stopping = threading.Event()

    def tick(self) -> None:
        """One round: each function once, as the Scheduler would invoke it."""
        event = {"scheduledTime": datetime.now(UTC).isoformat(timespec="seconds")}
        for function in self.functions:
            try:
                runtime.invoke(function, event)
            except Exception as exc:  # a failed run is logged; the next round tries again, as on AWS
                self.log(f"schedule: {function.logical_id} failed: {exc}")

    def loop(self) -> None:
        while not self.stopping.wait(self.period):
            self.tick()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.schedules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--s3", default=None, help="the local S3 endpoint (make run passes its own)")
    args = parser.parse_args(argv)
    ticker = Ticker(stack.log)
    if not ticker.functions:
        return 0
    stack.apply_function_env(args.s3, [f.logical_id for f in ticker.functions])

    def on_signal(_signum: int, _frame: Any) -> None:
        ticker.stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    ticker.loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
