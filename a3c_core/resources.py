"""How many cores may this process use? One answer, from what the operating system enforces.

``os.cpu_count()`` counts the host's cores. On a shared JupyterHub that may be 64 while a student's
server may use one: starting 64 workers there makes them take turns on one core, and every one of
them runs slower than one worker alone would. Three things can limit a process, and the smallest wins:

- its CPU **affinity** (``taskset``, ``docker --cpuset-cpus``): the cores it may run on;
- its cgroup's CPU **quota** (``docker --cpus``, Kubernetes limits, systemd ``CPUQuota``): cgroup v2's
  ``cpu.max`` ("QUOTA PERIOD", or "max PERIOD" for none), cgroup v1's ``cpu.cfs_quota_us`` over
  ``cpu.cfs_period_us`` (-1 for none); the quota of the process's own cgroup and of every cgroup
  above it, since the smallest of them applies;
- ``CPU_LIMIT``, which JupyterHub's spawners set from ``c.Spawner.cpu_limit`` (a number of cores).

A fractional limit counts as its floor, and at least one core: 1.5 cores give one worker the whole of
one core, where two would share one and a half.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CoreLimits:
    """Each limit found (``None``: no such limit), and the cores they leave (:attr:`usable`)."""

    host: int                 # os.cpu_count(): the cores of the machine
    affinity: int | None      # cores in the CPU affinity mask
    quota: float | None       # cgroup quota in cores (quota / period), the smallest on the path to the root
    cpu_limit: float | None   # CPU_LIMIT in cores

    @property
    def usable(self) -> int:
        """The smallest limit, as whole cores, at least 1."""
        limits = [self.host, self.affinity, self.quota, self.cpu_limit]
        return max(1, math.floor(min(limit for limit in limits if limit is not None)))

    def describe(self) -> str:
        """One line for people: ``"1 core (host 64, affinity 64, cgroup quota 1.0, CPU_LIMIT 1.0)"``."""
        parts = [f"host {self.host}"]
        parts += [f"affinity {self.affinity}"] if self.affinity is not None else []
        parts += [f"cgroup quota {self.quota:g}"] if self.quota is not None else []
        parts += [f"CPU_LIMIT {self.cpu_limit:g}"] if self.cpu_limit is not None else []
        return f"{self.usable} core{'s' if self.usable > 1 else ''} ({', '.join(parts)})"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cgroup_paths(proc_cgroup: str) -> tuple[str | None, str | None]:
    """The process's cgroup v2 path and cgroup v1 ``cpu`` path, from ``/proc/self/cgroup``'s text."""
    v2 = v1 = None
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _ancestors(mount: Path, path: str) -> list[Path]:
    """``mount/path`` and each folder above it up to ``mount``. A path that is not there (a container
    sees its own cgroup as the mount's root) gives the mount's root alone."""
    here = mount / path.lstrip("/")
    if not here.is_dir():
        return [mount]
    folders = [here]
    while folders[-1] != mount and mount in folders[-1].parents:
        folders.append(folders[-1].parent)
    return folders


def _v2_quota(folder: Path) -> float | None:
    fields = (_read(folder / "cpu.max") or "").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int(_read(folder / "cpu.cfs_quota_us") or "-1")
        period = int(_read(folder / "cpu.cfs_period_us") or "0")
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_quota(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The smallest CPU quota (in cores) of this process's cgroup and the cgroups above it, cgroup v2
    or v1; ``None`` when none is set. ``proc_cgroup`` and ``root`` are parameters for the tests."""
    v2, v1 = _cgroup_paths(_read(proc_cgroup) or "")
    quotas: list[float | None] = []
    for unified in (root, root / "unified"):  # cgroup v2 alone, or beside v1 ("hybrid")
        if v2 is not None and (unified / "cgroup.controllers").exists():
            quotas += [_v2_quota(folder) for folder in _ancestors(unified, v2)]
            break
    if v1 is not None:
        for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            if (root / name).is_dir():
                quotas += [_v1_quota(folder) for folder in _ancestors(root / name, v1)]
                break
    found = [quota for quota in quotas if quota is not None]
    return min(found) if found else None


def core_limits() -> CoreLimits:
    """Every limit on this process's cores, as :class:`CoreLimits`."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        cpu_limit = float(os.environ["CPU_LIMIT"])
        cpu_limit = cpu_limit if math.isfinite(cpu_limit) and cpu_limit > 0 else None
    except (KeyError, ValueError):
        cpu_limit = None
    return CoreLimits(host=os.cpu_count() or 1, affinity=affinity, quota=cgroup_quota(), cpu_limit=cpu_limit)


def usable_cores() -> int:
    """How many cores this process may keep busy at once: the smallest of the host's cores, the CPU
    affinity, the cgroup quota and ``CPU_LIMIT``, as a whole number, at least 1."""
    return core_limits().usable


def default_workers(preferred: int) -> int:
    """A run's default number of workers: ``preferred`` (a preset's), but no more than the cores this
    process may use, so that no two workers take turns on one core."""
    return max(1, min(preferred, usable_cores()))
