"""How many cores a process may use: affinity, cgroup quotas (v1 and v2, fake and real) and CPU_LIMIT."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from a3c_core import resources
from a3c_core.resources import CoreLimits, cgroup_quota, core_limits, default_workers, usable_cores


def fake_cgroups(tmp_path: Path, proc_cgroup: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A /proc/self/cgroup file with ``proc_cgroup`` and a cgroup tree with ``files`` (path: text)."""
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_cgroup)
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return proc, root


def test_cgroup_v2_quota_is_read_from_cpu_max_and_the_smallest_on_the_path_to_the_root_wins(tmp_path):
    proc, root = fake_cgroups(tmp_path, "0::/hub/student7\n", {
        "cgroup.controllers": "cpu memory", "cpu.max": "max 100000",
        "hub/cpu.max": "150000 100000", "hub/student7/cpu.max": "max 100000"})
    assert cgroup_quota(proc, root) == 1.5
    (root / "hub/student7/cpu.max").write_text("50000 100000")
    assert cgroup_quota(proc, root) == 0.5
    (root / "hub/cpu.max").write_text("max 100000")
    (root / "hub/student7/cpu.max").write_text("max 100000")
    assert cgroup_quota(proc, root) is None


def test_cgroup_v1_quota_is_quota_over_period_and_minus_one_is_no_quota(tmp_path):
    proc, root = fake_cgroups(tmp_path, "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/\n", {
        "cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000",
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"})
    assert cgroup_quota(proc, root) == 2.0
    (root / "cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1")
    assert cgroup_quota(proc, root) is None


def test_a_container_that_sees_its_own_cgroup_as_the_root_reads_the_root(tmp_path):
    # Inside a container, /proc/self/cgroup names the host's path, which the container's mount lacks.
    proc, root = fake_cgroups(tmp_path, "0::/kubepods/pod1/container2\n", {
        "cgroup.controllers": "cpu", "cpu.max": "100000 100000"})
    assert cgroup_quota(proc, root) == 1.0


def test_hybrid_hierarchy_unreadable_files_and_nonsense_give_no_quota(tmp_path):
    proc, root = fake_cgroups(tmp_path, "1:cpu:/a\n0::/b\n", {
        "unified/cgroup.controllers": "", "unified/b/cpu.max": "three 100000",
        "cpu/a/cpu.cfs_quota_us": "lots", "cpu/a/cpu.cfs_period_us": "100000"})
    assert cgroup_quota(proc, root) is None
    (root / "unified/b/cpu.max").write_text("300000 100000")
    assert cgroup_quota(proc, root) == 3.0
    assert cgroup_quota(tmp_path / "missing", tmp_path / "nothing") is None


@pytest.mark.parametrize("limits, usable", [
    (CoreLimits(host=64, affinity=64, quota=None, cpu_limit=None), 64),
    (CoreLimits(host=64, affinity=64, quota=None, cpu_limit=1.0), 1),
    (CoreLimits(host=64, affinity=4, quota=2.5, cpu_limit=None), 2),   # the floor of a fractional quota
    (CoreLimits(host=64, affinity=None, quota=0.5, cpu_limit=None), 1),  # at least one core
    (CoreLimits(host=2, affinity=2, quota=16.0, cpu_limit=8.0), 2),     # a limit above the host changes nothing
])
def test_the_smallest_limit_wins_as_whole_cores_and_at_least_one(limits, usable):
    assert limits.usable == usable


def test_cpu_limit_from_the_environment_and_a_bad_value_is_ignored(monkeypatch):
    monkeypatch.setattr(resources, "cgroup_quota", lambda: None)
    monkeypatch.setenv("CPU_LIMIT", "1.0")
    assert core_limits().cpu_limit == 1.0 and usable_cores() == 1 and default_workers(8) == 1
    assert core_limits().describe().startswith("1 core (") and "CPU_LIMIT 1" in core_limits().describe()
    for bad in ("", "lots", "-2", "nan", "0"):
        monkeypatch.setenv("CPU_LIMIT", bad)
        assert core_limits().cpu_limit is None
    monkeypatch.delenv("CPU_LIMIT")
    assert usable_cores() == len(os.sched_getaffinity(0))
    assert default_workers(1) == 1 and default_workers(10**6) == usable_cores()


def test_affinity_counts(tmp_path):
    code = "from a3c_core.resources import usable_cores; print(usable_cores())"
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "CPU_LIMIT"})
    if out.returncode != 0:
        pytest.skip(f"taskset cannot run here: {out.stderr.strip()}")
    assert out.stdout.strip() == "1"


def test_a_real_cgroup_v1_quota_is_read_by_a_process_inside_it():
    folder = Path("/sys/fs/cgroup/cpu") / f"a3c-lab-test-{os.getpid()}"
    if os.geteuid() != 0 or not (folder.parent / "cpu.cfs_quota_us").exists():
        pytest.skip("needs root and a cgroup v1 cpu controller at /sys/fs/cgroup/cpu (a real quota is made there)")
    folder.mkdir()
    try:
        (folder / "cpu.cfs_period_us").write_text("100000")
        (folder / "cpu.cfs_quota_us").write_text("150000")
        code = "from a3c_core.resources import core_limits; print(core_limits().quota, core_limits().usable)"
        out = subprocess.run(["sh", "-c", f'echo $$ > {folder}/cgroup.procs && exec "$0" "$@"', sys.executable,
                              "-c", code], capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "CPU_LIMIT"})
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["1.5", "1"]
    finally:
        folder.rmdir()
