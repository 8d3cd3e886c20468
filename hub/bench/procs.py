"""CPU accounting from /proc: who used how much CPU during a measurement window.

A `Probe` names groups of processes (the hub's processes, RabbitMQ's beam.smp,
every postgres process, the destination, the load generator) and takes
`Snapshot`s of their CPU time. A group's time includes the time of its reaped
children (`cutime`, `cstime`), so a postgres backend that ends inside the window
is still counted: the postmaster collects its time when it reaps it. The hub's
threads are read one by one, because a Python process is limited by its busiest
thread (the event loop) long before it uses a whole core per thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TICK = float(os.sysconf("SC_CLK_TCK"))
PROC = Path("/proc")


def _stat_fields(path: Path) -> list[str] | None:
    """The fields of a /proc stat file after the command name, or None when gone."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User + system CPU seconds of a process (and of its reaped children)."""
    fields = _stat_fields(PROC / str(pid) / "stat")
    if fields is None:
        return 0.0
    # After the name: state(0) ... utime(11) stime(12) cutime(13) cstime(14).
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def thread_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process, by thread id."""
    out: dict[int, float] = {}
    try:
        tids = [int(t.name) for t in (PROC / str(pid) / "task").iterdir()]
    except OSError:
        return out
    for tid in tids:
        fields = _stat_fields(PROC / str(pid) / "task" / str(tid) / "stat")
        if fields is not None:
            out[tid] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def pids_named(name: str) -> list[int]:
    """Pids of the processes whose executable name (comm) is `name`."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == name:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine summed over all cores, from /proc/stat."""
    first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in first[:8])
    busy = user + nice + system + irq + softirq + steal
    return busy / TICK, (busy + idle + iowait) / TICK


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds per group, per pid and per hub thread, at one moment."""

    at: float
    groups: dict[str, float]
    pids: dict[str, dict[int, float]]
    threads: dict[int, dict[int, float]]
    machine_busy: float


@dataclass
class Usage:
    """What each group used between two snapshots."""

    wall: float
    seconds: dict[str, float]
    per_pid: dict[str, dict[int, float]]  # group -> pid -> cores (pids alive throughout)
    loop_threads: dict[int, float]  # hub pid -> cores used by its main (event loop) thread
    machine_cores: float

    def cores(self, group: str) -> float:
        """Average cores the group used over the window."""
        return self.seconds.get(group, 0.0) / self.wall if self.wall > 0 else 0.0

    def busiest(self, group: str) -> tuple[int, float] | None:
        """(pid, cores) of the group's busiest process, or None."""
        found = self.per_pid.get(group) or {}
        return max(found.items(), key=lambda item: item[1]) if found else None


@dataclass
class Probe:
    """Groups of processes to account for; a group is a function returning its pids."""

    groups: Mapping[str, Callable[[], Iterable[int]]] = field(default_factory=dict)
    threaded: Callable[[], Iterable[int]] = lambda: ()

    def snapshot(self) -> Snapshot:
        groups: dict[str, float] = {}
        pids: dict[str, dict[int, float]] = {}
        for name, find in self.groups.items():
            per_pid = {pid: cpu_seconds(pid) for pid in find()}
            pids[name] = per_pid
            groups[name] = sum(per_pid.values())
        threads = {pid: thread_seconds(pid) for pid in self.threaded()}
        return Snapshot(time.monotonic(), groups, pids, threads, machine_busy_seconds()[0])

    @staticmethod
    def usage(before: Snapshot, after: Snapshot) -> Usage:
        """The CPU each group used from `before` to `after`."""
        wall = after.at - before.at
        seconds = {g: max(0.0, after.groups[g] - before.groups.get(g, 0.0)) for g in after.groups}
        per_pid: dict[str, dict[int, float]] = {}
        for group, now in after.pids.items():
            old = before.pids.get(group, {})
            if wall > 0:
                per_pid[group] = {
                    pid: (t - old[pid]) / wall for pid, t in now.items() if pid in old
                }
        loops = {}
        for pid, per_thread in after.threads.items():
            old_loop = before.threads.get(pid, {}).get(pid)
            if old_loop is not None and pid in per_thread and wall > 0:
                loops[pid] = (per_thread[pid] - old_loop) / wall
        machine = (after.machine_busy - before.machine_busy) / wall if wall > 0 else 0.0
        return Usage(wall, seconds, per_pid, loops, machine)


def own_cpu_seconds() -> float:
    """CPU seconds of this process (a load generator running in it)."""
    t = os.times()
    return t.user + t.system


def children_cpu_seconds() -> float:
    """CPU seconds of this process's reaped children (a load generator that exited)."""
    t = os.times()
    return t.children_user + t.children_system
