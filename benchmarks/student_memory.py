"""Where one student's memory goes: notebook 05's Catch run in a real kernel, process by process.

    .venv/bin/python benchmarks/student_memory.py                 # 1 worker, as under a 1-core limit
    .venv/bin/python benchmarks/student_memory.py --cpu-limit 2 --seconds 60 --out benchmarks/results/student_memory.json

Starts a Jupyter kernel (with ``CPU_LIMIT`` set, as the classroom hub's spawner sets it), runs what
notebook 05 runs up to its dashboard (the imports, a ``catch`` preset ``Trainer`` with the default
number of workers, ``Dashboard``), lets it train for ``--seconds``, and reads ``/proc/PID/smaps_rollup``
of the kernel and of every process under it: the proportional set size (PSS: pages shared between
processes are split among them), its anonymous part, and the private dirty pages (what a process
wrote: its own, shared with no one). Alone on a machine, shared libraries are split among this
student's processes only; on a class's hub they are split among every student's, so a class
measures a little less per student (``tests/test_classroom.py``). Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from lab import run_cell  # noqa: E402  (a cell run through a kernel client, shared with the tests)
FIELDS = {"Pss:": "pss", "Pss_Anon:": "pss_anon", "Private_Dirty:": "private_dirty", "Anonymous:": "anonymous"}


def rollup(pid: int) -> dict[str, float]:
    """MB of PSS, anonymous PSS, private dirty and anonymous pages of process ``pid``."""
    sizes = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, *value = line.split()
        if key in FIELDS:
            sizes[FIELDS[key]] = round(int(value[0]) / 1024, 1)
    return sizes


def descendants(pid: int) -> list[int]:
    """``pid``'s children, their children, ...: every live process under it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return sorted(found)


def role(pid: int) -> str:
    """What a process under the kernel is, from its command line."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return "gone"
    if "resource_tracker" in command:
        return "resource tracker"
    if "forkserver" in command:
        return "fork server or its child"
    return command[:60]


SETUP = """import torch
torch.set_num_threads(1)
from a3c_core import A3CConfig, Trainer
from a3c_core.dashboard import Dashboard
from a3c_core.resources import default_workers
"""
START = """config = A3CConfig.preset("catch", workers=default_workers(2), max_minutes={minutes})
catch = Trainer(config).start()
display(Dashboard(catch))
"""


def measure(cpu_limit: int, seconds: float) -> dict:
    """The kernel's memory before and after the imports, then every process's after ``seconds`` of training."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(ROOT / "notebooks"),
                                       env={**os.environ, "CPU_LIMIT": str(cpu_limit)})
    try:
        kernel = manager.provisioner.process.pid
        result = {"kernel_started": rollup(kernel)}
        run_cell(client, SETUP)
        result["kernel_after_imports"] = rollup(kernel)
        run_cell(client, START.format(minutes=seconds / 60 + 2))
        time.sleep(seconds)
        names = json.loads(run_cell(client, "import json; print(json.dumps(catch.process_ids()))"))
        by_pid = {pid: name for name, pid in names.items()}
        processes = {"kernel": rollup(kernel)}
        for pid in descendants(kernel):
            sizes = rollup(pid) if Path(f"/proc/{pid}").exists() else None
            if sizes:
                processes[f"{by_pid.get(pid) or role(pid)} ({pid})"] = sizes
        result["processes"] = processes
        result["total_pss"] = round(sum(sizes["pss"] for sizes in processes.values()), 1)
        run_cell(client, "catch.stop()")
        return result
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-limit", type=int, default=1, help="CPU_LIMIT for the kernel (default 1: one worker)")
    parser.add_argument("--seconds", type=float, default=60, help="training time before the measurement")
    parser.add_argument("--out", type=Path, help="also write the result here (JSON)")
    args = parser.parse_args()
    if args.cpu_limit < 1 or args.seconds <= 0:
        parser.error("--cpu-limit must be at least 1 and --seconds above 0")
    if not Path("/proc/self/smaps_rollup").exists():
        print("student_memory.py reads /proc/PID/smaps_rollup, which only Linux has", file=sys.stderr)
        return 1
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu_limit": args.cpu_limit, "seconds": args.seconds,
              **measure(args.cpu_limit, args.seconds)}
    print(f"{'process':44s} {'PSS MB':>8s} {'anon PSS':>9s} {'private dirty':>14s}")
    for name, sizes in result["processes"].items():
        print(f"{name:44s} {sizes['pss']:8.0f} {sizes['pss_anon']:9.0f} {sizes['private_dirty']:14.0f}")
    print(f"{'all':44s} {result['total_pss']:8.0f}")
    print(f"kernel: {result['kernel_started']['pss']:.0f} MB started, {result['kernel_after_imports']['pss']:.0f} "
          f"after notebook 05's imports")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
