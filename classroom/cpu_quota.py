"""Run a student's server under a cgroup CPU quota of ``CPU_LIMIT`` cores, then exec it.

    python cpu_quota.py COMMAND [ARGS ...]     (JupyterHub's Spawner.cmd, see jupyterhub_config.py)

The quota is the one the package reads back (:mod:`a3c_core.resources`), and the one the kernel
enforces: a student's processes together get at most ``CPU_LIMIT`` cores of time, whatever they
start. It needs Linux, root and a cgroup file system (v2, or v1's ``cpu`` controller); where one is
missing it says so in one line and runs the command anyway, limited by ``CPU_LIMIT`` alone.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD = 100_000  # microseconds, the kernel's default


def cgroup_dir(user: str) -> tuple[Path, str] | None:
    """The student's cgroup folder and its kind ("v1" or "v2"), where this machine has one."""
    name = f"a3c-lab-{user}"
    if (ROOT / "cgroup.controllers").exists():
        return ROOT / name, "v2"
    if (ROOT / "cpu" / "cpu.cfs_quota_us").exists():
        return ROOT / "cpu" / name, "v1"
    return None


def enter_cgroup(user: str, cores: float) -> str:
    """Put this process in a cgroup limited to ``cores``; what was done, in a few words."""
    found = cgroup_dir(user)
    if found is None:
        return "no cgroup file system"
    folder, kind = found
    quota = max(1000, int(cores * PERIOD))
    folder.mkdir(exist_ok=True)
    if kind == "v2":
        (folder / "cpu.max").write_text(f"{quota} {PERIOD}")
    else:
        (folder / "cpu.cfs_period_us").write_text(str(PERIOD))
        (folder / "cpu.cfs_quota_us").write_text(str(quota))
    (folder / "cgroup.procs").write_text(str(os.getpid()))
    return f"cgroup {kind} {folder}, {cores:g} cores"


def remove_cgroup(user: str, wait: float = 10.0) -> None:
    """Remove the student's cgroup once its processes are gone (waits up to ``wait`` seconds for the
    last of them to exit: a cgroup that holds a process cannot be removed)."""
    found = cgroup_dir(user)
    deadline = time.monotonic() + wait
    while found is not None and found[0].is_dir():
        try:
            found[0].rmdir()
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: cpu_quota.py COMMAND [ARGS ...]")
    user, cores = os.environ.get("JUPYTERHUB_USER", "student"), os.environ.get("CPU_LIMIT")
    if cores:
        try:
            done = enter_cgroup(user, float(cores))
        except (OSError, ValueError) as error:
            done = f"not enforced ({error})"
        print(f"[a3c] {user}: CPU_LIMIT={cores}; quota: {done}", file=sys.stderr, flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
