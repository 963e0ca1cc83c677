"""What the benchmarks share: the machine, the LINE stand-in in its own process, a table printer."""

from __future__ import annotations

import bisect
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """nproc, CPU model and Python, for the figures' context."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


@dataclass
class StandIn:
    """A running LINE stand-in process; its state is read over its own ``/_fake`` hooks."""

    base_url: str
    latency_ms: float
    process: subprocess.Popen

    def reset(self) -> None:
        """Forget every push and keep the injected latency (``reset`` alone would clear it)."""
        httpx.post(self.base_url + "/_fake/reset").raise_for_status()
        httpx.post(self.base_url + "/_fake/mode",
                   json={"status": None, "latency_ms": self.latency_ms}).raise_for_status()

    def pushes(self) -> list[dict]:
        return httpx.get(self.base_url + "/_fake/pushes", timeout=60).json()

    def request_count(self) -> int:
        return len(httpx.get(self.base_url + "/_fake/requests", timeout=60).json())


@contextmanager
def stand_in(token: str, latency_ms: float) -> Iterator[StandIn]:
    """``tidtam.demo.line_standin`` in a child process for the block's duration."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._stand_in", "--token", token, "--latency-ms", str(latency_ms)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"the LINE stand-in did not start: {line!r}")
        running = StandIn(f"http://127.0.0.1:{int(line.split()[1])}", latency_ms, process)
        _wait_ready(running.base_url)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(base_url + "/_fake/pushes", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def max_in_window(instants: Sequence[datetime], seconds: float = 1.0) -> int:
    """The most instants that fall in any window of ``seconds`` (sliding, not aligned)."""
    times = sorted(t.timestamp() for t in instants)
    return max((bisect.bisect_right(times, t + seconds - 1e-9) - i for i, t in enumerate(times)),
               default=0)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain-text table, one row per variant."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
