"""Where the suite's CPU goes: this machine's busy CPU time (every process and container),
and that of a process tree that has ended (its own and its waited-for descendants'), in core-seconds.

On a machine of 2 cores the suite is bound by CPU, so its time is about its CPU time over the cores: these
figures say which part of the suite costs what, where wall-clock times only say how long each part waited.
What runs in a container (a test host, a hub) is counted in the machine's figure only."""

from __future__ import annotations

import os
import time
from pathlib import Path

# Every process tree that wait() reaped in this process, as (when, its CPU seconds): the CPU report
# (tests/conftest.py) leaves a tree that a thread of its own reaped out of the test that ran meanwhile.
REAPED: list[tuple[float, float]] = []


def machine() -> float:
    """This machine's busy CPU time since its start (every process, every container; not idle, not waiting for
    I/O), in seconds, from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(field) for field in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait(pid: int) -> tuple[int, float]:
    """Waits for the child pid to end: its exit code, and the CPU seconds of it and its waited-for descendants."""
    _pid, status, usage = os.wait4(pid, 0)
    used = usage.ru_utime + usage.ru_stime
    REAPED.append((time.monotonic(), used))
    return os.waitstatus_to_exitcode(status), used
