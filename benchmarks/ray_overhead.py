"""The Ray backend against the local one: training throughput side by side, and what one parameter
server can take.

    .venv/bin/python benchmarks/ray_overhead.py                       # Pong, fast preset, 2 workers, 3 repeats
    .venv/bin/python benchmarks/ray_overhead.py --workers 1 4 8 15 --seconds 30 --repeats 1   # a 16-core machine

1. **Throughput**: for each worker count and repeat, one run per backend (the order alternates between
   repeats, so a trend in the machine's load hits both), each measured over ``--seconds`` after
   ``--warmup`` seconds of training (Ray's start-up is left out: it is paid once per run). Agent
   steps/s per backend, the median over repeats, and the Ray backend's ratio to the local one.
   Over the same seconds, **where the CPU goes**: the CPU time of every process of the run (the
   driver, the workers, and on Ray the evaluator, the parameter server, the mailbox, the raylet and
   GCS; the local backend's evaluator is a thread of the driver), as cores in use and as CPU milliseconds per update (one update = one worker's rollout).
2. **The parameter server alone**: ``--updates`` gradients of the model's size sent to one
   :class:`~a3c_core.ray_backend.ParameterServer` as fast as the driver can submit them, each
   answered with the weights: gradients applied per second, and the bytes of one update each way.
   Divided by one worker's updates per second (its steps/s over ``rollout_steps``), that says how many
   workers one server can feed before it saturates.

Results go to ``--out`` (JSON) and a markdown table for ``benchmarks/README.md`` is printed, with the
machine's cores and its load average beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import ray
from tqdm import tqdm

from a3c_core import A3CConfig, ActorCritic, Trainer, make_env
from a3c_core.config import PRESETS
from a3c_core.ray_actors import ParameterServer, flat_parameters
from a3c_core.ray_backend import connect
from a3c_core.shared import SharedAdam
from a3c_core.resources import usable_cores


#: The roles of the processes that are not the Trainer's named children, by their name or command line.
_ROLES = (("raylet", "raylet"), ("gcs_server", "GCS"), ("ParameterServer", "parameter server"),
          ("Mailbox", "mailbox"))


def cpu_seconds(children: dict[int, str]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process ("driver": the Trainer's side) and every
    process under it, summed by role: ``children`` names the Trainer's own (pid -> "worker 3", ...)."""
    me = psutil.Process()
    used: dict[str, float] = {}
    for process in (me, *me.children(recursive=True)):
        try:
            times = process.cpu_times()
            named = children.get(process.pid)
            if process.pid == me.pid:
                role = "driver"
            elif named is not None:
                role = "workers" if named.startswith("worker") else named
            else:
                command = " ".join([process.name(), *process.cmdline()])
                role = next((role for key, role in _ROLES if key in command), "other")
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # ended meanwhile
            continue
        used[role] = used.get(role, 0.0) + times.user + times.system
    return used


def measure_run(config: A3CConfig, warmup: float, seconds: float) -> tuple[float, dict[str, float]]:
    """Agent steps/s of one training run of ``config`` over ``seconds`` after ``warmup`` seconds of
    training, and the CPU seconds each role used per second of that window (cores in use)."""
    trainer = Trainer(config, verbose=False)
    with trainer:
        while trainer.steps == 0 and trainer.running:
            time.sleep(0.1)
        if not trainer.running:
            raise SystemExit(f"the {config.backend} run stopped before its first step: {trainer.failure}")
        time.sleep(warmup)
        deadline = time.monotonic() + 60
        processes = config.workers + (config.backend == "ray")  # the local backend's evaluator is a thread
        while len(trainer.process_ids()) < processes and time.monotonic() < deadline:
            time.sleep(0.2)  # on Ray, each actor says where it runs once asked (process_ids asks)
        children = {pid: name for name, pid in trainer.process_ids().items()}
        cpu0, steps0, t0 = cpu_seconds(children), trainer.steps, time.monotonic()
        time.sleep(seconds)
        cpu1, steps1, t1 = cpu_seconds(children), trainer.steps, time.monotonic()
    cores = {role: (cpu1[role] - cpu0.get(role, 0.0)) / (t1 - t0) for role in cpu1}
    return (steps1 - steps0) / (t1 - t0), cores


def server_capacity(config: A3CConfig, updates: int) -> dict[str, float]:
    """Updates/s of one parameter server fed back to back, the median round trip of one update sent
    alone, and the bytes of one update each way."""
    started = connect("", config.workers)
    env = make_env(config)
    actions = int(env.action_space.n)
    env.close()
    model = ActorCritic.from_config(config, actions)
    server = ParameterServer.remote(config, actions, model.state_dict(), SharedAdam(model.parameters()).state_dict(), 0)
    gradient = np.random.default_rng(0).normal(0, 1e-3, flat_parameters(model).size).astype(np.float32)
    weights = ray.get(server.push.remote(gradient, 30))[0]  # warm
    trips = []
    for _ in range(50):  # what one worker waits for after each rollout: its gradient there, the weights back
        start = time.monotonic()
        ray.get(server.push.remote(gradient, 30))
        trips.append(time.monotonic() - start)
    start, in_flight = time.monotonic(), []
    for _ in range(updates):  # 8 updates in flight, as from 8 workers: the server is never idle
        in_flight.append(server.push.remote(gradient, 30))
        if len(in_flight) == 8:
            done, in_flight = ray.wait(in_flight)
            ray.get(done)
    ray.get(in_flight)
    elapsed = time.monotonic() - start
    ray.kill(server)
    if started:
        ray.shutdown()
    return {"updates_per_second": updates / elapsed, "round_trip_ms": 1e3 * statistics.median(trips),
            "bytes_in": float(gradient.nbytes),
            "bytes_out": float(weights.nbytes), "parameters": float(gradient.size)}


#: The roles a run's processes are counted under, in the order tables and pictures show them.
CPU_ROLES = ["workers", "parameter server", "raylet", "mailbox", "evaluator", "driver", "GCS", "other"]


def cpu_summary(rates: list[float], runs: list[dict[str, float]], rollout_steps: int) -> dict[str, Any]:
    """One backend's repeats summed up: median steps/s, median cores in use per role (roles it never
    had are left out), and each role's CPU milliseconds per update (one worker rollout) at that rate."""
    steps_per_second = statistics.median(rates)
    cores = {role: statistics.median(run.get(role, 0.0) for run in runs)
             for role in CPU_ROLES if any(role in run for run in runs)}
    updates = steps_per_second / rollout_steps
    return {"steps_per_second": steps_per_second, "cores": cores,
            "ms_per_update": {role: 1e3 * used / updates for role, used in cores.items()} if updates else {}}


def print_cpu_table(summary: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Where the CPU went (:func:`cpu_summary` per worker count and backend): cores in use by each role,
    summed for "all", and CPU ms per update."""
    print("\nWhere the CPU went over the measured seconds: cores in use by each role, median over repeats; "
          "CPU ms per update = all roles' CPU time over the updates made (one per worker rollout)")
    print(f"\n| workers | backend | {' | '.join(CPU_ROLES)} | all | CPU ms per update: all / workers |")
    print("|---|---|" + "---|" * (len(CPU_ROLES) + 2))
    for workers, backends in summary.items():
        for backend, measured in backends.items():
            cores, per_update = measured["cores"], measured["ms_per_update"]
            cells = [f"{cores[role]:.2f}" if role in cores else "-" for role in CPU_ROLES]
            ms = f"{sum(per_update.values()):.0f} / {per_update['workers']:.0f}" if per_update else "-"
            print(f"| {workers} | {backend} | {' | '.join(cells)} | {sum(cores.values()):.2f} | {ms} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fast")
    parser.add_argument("--game", default="pong")
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="worker counts to measure")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of training before the measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--updates", type=int, default=300, help="updates sent to the lone parameter server")
    parser.add_argument("--out", default="benchmarks/results/ray_overhead.json")
    args = parser.parse_args()
    if min(args.workers) < 1 or args.seconds <= 0 or args.warmup < 0 or args.repeats < 1 or args.updates < 1:
        parser.error("worker counts, --seconds, --repeats and --updates must be positive, --warmup >= 0")

    runs_dir = tempfile.mkdtemp(prefix="ray-overhead-")
    rates: dict[str, dict[str, list[float]]] = {str(n): {"local": [], "ray": []} for n in args.workers}
    cpu_use: dict[str, dict[str, list[dict[str, float]]]] = {str(n): {"local": [], "ray": []} for n in args.workers}
    cores = usable_cores()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else platform.machine()
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{cores} cores, {cpu}", "preset": args.preset,
              "game": args.game, "seconds": args.seconds, "warmup": args.warmup, "repeats": args.repeats,
              "rates": rates, "cpu_cores": cpu_use, "server": None, "complete": False}
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"cannot create the folder of --out {args.out}: {error.strerror}")
    if out.is_dir() or not os.access(out.parent, os.W_OK):
        parser.error(f"cannot write --out {args.out}: " + ("it is a folder" if out.is_dir() else "its folder is not writable"))

    def write() -> None:  # after every run: a measurement cut short keeps what it had
        result["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        out.write_text(json.dumps(result, indent=2) + "\n")

    plan = [(n, r, backend) for n in args.workers for r in range(args.repeats)
            for backend in (("local", "ray") if r % 2 == 0 else ("ray", "local"))]
    for workers, _, backend in tqdm(plan, desc="runs", unit="run"):
        config = A3CConfig.preset(args.preset, game=args.game, workers=workers, backend=backend, run_dir=runs_dir,
                                  snapshot_minutes=0, checkpoint_minutes=1e6, keep_checkpoints=1)
        rate, cores_used = measure_run(config, args.warmup, args.seconds)
        rates[str(workers)][backend].append(rate)
        cpu_use[str(workers)][backend].append(cores_used)
        write()
    config = A3CConfig.preset(args.preset, game=args.game, workers=max(args.workers))
    server = result["server"] = server_capacity(config, args.updates)
    result["cpu_summary"] = {workers: {backend: cpu_summary(rates[workers][backend], runs, config.rollout_steps)
                                       for backend, runs in backends.items()} for workers, backends in cpu_use.items()}
    result["complete"] = True
    write()
    load = result["load_at_end"]

    print(f"\n{result['machine']}, load at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; {args.game}, "
          f"{args.preset} preset; steps/s over {args.seconds:.0f} s after {args.warmup:.0f} s, median of {args.repeats}")
    print("\n| workers | local steps/s | Ray steps/s | Ray / local | local updates/s per worker |")
    print("|---|---|---|---|---|")
    for workers, backends in result["cpu_summary"].items():
        local, on_ray = (backends[b]["steps_per_second"] for b in ("local", "ray"))
        per_worker = local / int(workers) / config.rollout_steps
        ratio = f"{on_ray / local:.2f}" if local else "-"  # a window too short for one local update
        print(f"| {workers} | {local:,.0f} | {on_ray:,.0f} | {ratio} | {per_worker:.1f} |")
    print_cpu_table(result["cpu_summary"])
    fewest = min(args.workers)
    one_worker = result["cpu_summary"][str(fewest)]["local"]["steps_per_second"] / fewest / config.rollout_steps
    if not one_worker:
        raise SystemExit("the local runs took no step in the measured window: measure longer (--seconds)")
    print(f"\nOne parameter server ({server['parameters']:,.0f} parameters): {server['updates_per_second']:,.0f} "
          f"updates/s, one update's round trip {server['round_trip_ms']:.1f} ms; {server['bytes_in'] / 1e6:.2f} MB in (gradient) and {server['bytes_out'] / 1e6:.2f} MB out "
          f"(weights) per update; at {one_worker:.1f} updates/s per worker it feeds about "
          f"{server['updates_per_second'] / one_worker:,.0f} workers. Written to {args.out}")


if __name__ == "__main__":
    main()
