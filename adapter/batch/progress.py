"""Progress of a batch on stderr: a rich progress bar on a terminal, plain log lines otherwise.

The bar's total is the input size in bytes (known up front from ``stat``, unlike the number of
records inside archives and search pages), so the ETA is by bytes; the rate shown is records/s.
Without a terminal (CI, cron, ``| tee``) one line is logged every ``interval`` seconds
(``TRIAL2FHIR_PROGRESS_INTERVAL``, default 10).  ``--quiet`` shows nothing.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Protocol


class Progress(Protocol):
    def start(self, total_bytes: int, records: int = 0, failed: int = 0) -> None: ...
    def advance(self, done_bytes: int, records: int, failed: int) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class QuietProgress:
    def start(self, total_bytes: int, records: int = 0, failed: int = 0) -> None:
        pass

    def advance(self, done_bytes: int, records: int, failed: int) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass


class LogProgress:
    """One line every ``interval`` seconds: records, failures, records/s, share of input, ETA."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval if interval is not None else float(os.environ.get("TRIAL2FHIR_PROGRESS_INTERVAL", 10))
        self.total = 0
        self.started = self.last = time.monotonic()
        self.first_records = 0

    def start(self, total_bytes: int, records: int = 0, failed: int = 0) -> None:
        self.total = total_bytes
        self.started = self.last = time.monotonic()
        self.first_records = records

    def advance(self, done_bytes: int, records: int, failed: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        rate = (records - self.first_records) / elapsed
        line = f"trial2fhir: {records:,} records ({failed:,} failed), {rate:,.0f} records/s"
        if self.total:
            share = min(done_bytes / self.total, 1.0)
            line += f", {share:.0%} of input"
            if 0 < share < 1:
                line += f", ETA {_eta(elapsed * (1 - share) / share)}"
        print(line, file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        print(f"trial2fhir: {text}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        pass


class RichProgress:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]converting"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[records]:>10,} records"),
            TextColumn("{task.fields[failed]:,} failed"),
            TextColumn("{task.fields[rate]:>8,.0f} records/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task = self.bar.add_task("convert", total=None, records=0, failed=0, rate=0.0)
        self.started = time.monotonic()
        self.first_records = 0

    def start(self, total_bytes: int, records: int = 0, failed: int = 0) -> None:
        self.started = time.monotonic()
        self.first_records = records
        self.bar.update(self.task, total=total_bytes or None, records=records, failed=failed)
        self.bar.start()

    def advance(self, done_bytes: int, records: int, failed: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (records - self.first_records) / elapsed
        self.bar.update(self.task, completed=done_bytes, records=records, failed=failed, rate=rate)

    def message(self, text: str) -> None:
        self.bar.console.print(f"trial2fhir: {text}", markup=False, highlight=False)

    def stop(self) -> None:
        self.bar.stop()


def make_progress(quiet: bool) -> Progress:
    if quiet:
        return QuietProgress()
    if sys.stderr.isatty():
        return RichProgress()
    return LogProgress()
