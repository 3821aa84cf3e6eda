"""The Ray backend on a real 2-node Ray cluster simulated on this machine, on 127.0.0.1 only.

The cluster is Ray's own test utility (``ray.cluster_utils.Cluster``): a head node and a second
node, each a raylet with its own worker processes, both pinned to 127.0.0.1 (tests/conftest.py
makes Ray take the loopback address as this machine's). Every Ray process it starts is stopped
at the end of the module, and the module checks that none is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray", reason="the Ray backend's tests need the [cluster] extra: pip install -e '.[cluster]'")
psutil = pytest.importorskip("psutil")
from ray.cluster_utils import Cluster  # noqa: E402

from a3c_core import A3CConfig, ActorCritic, Trainer  # noqa: E402
from a3c_core.checkpoint import load_run  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def ray_processes(session_dir: str) -> list[psutil.Process]:
    """The live processes of the Ray session in ``session_dir``: its services, and the workers they started."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(session_dir in part for part in process.info["cmdline"] or []):
                found += [process, *process.children(recursive=True)]
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def cluster():
    """A 2-node Ray cluster on 127.0.0.1 (2 CPUs each); yields its address ``127.0.0.1:PORT``."""
    if ray.is_initialized():
        ray.shutdown()
    two_nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "node_ip_address": "127.0.0.1",
                                                              "include_dashboard": False})
    two_nodes.add_node(num_cpus=2, node_ip_address="127.0.0.1")
    session_dir = two_nodes.head_node.get_session_dir_path()
    try:
        yield two_nodes.address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        two_nodes.shutdown()
        deadline = time.monotonic() + 30
        while ray_processes(session_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = ray_processes(session_dir)
        for process in left:
            process.kill()
        assert not left, f"Ray processes left after the cluster's shutdown: {left}"


def catch(tmp_path, address: str, **overrides) -> A3CConfig:
    """The Catch preset on the Ray cluster at ``address``: the local learning test's config but the backend.

    The evaluator keeps the preset's pace: unpaced, at niceness 0, it takes a core from the niced
    workers on this 2-core machine, and the learning run got half the steps."""
    return A3CConfig.preset("catch", backend="ray", ray_address=address, run_dir=str(tmp_path), **overrides)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.2)


def test_ray_backend_learns_catch_to_the_local_backends_bar(tmp_path, cluster, catch_learning):
    """The same bar as the local backend's learning test (tests/test_learning.py)."""
    learned = catch_learning(catch(tmp_path, cluster))
    assert learned.last_checkpoint is not None and learned.failure is None
    assert not ray.is_initialized()  # stop() left the cluster


def test_workers_spread_over_both_nodes_on_the_loopback_and_no_actor_is_left_after_stop(tmp_path, cluster):
    trainer = Trainer(catch(tmp_path, cluster, max_minutes=2), verbose=False)
    trainer.start()
    wait_for(lambda: trainer.steps > 200, 120, "the first steps")
    wait_for(lambda: len(trainer.process_ids()) == 3, 30, "every actor to say where it runs")
    pids, nodes = trainer.process_ids(), trainer._session.group.nodes()
    # while the run trains, every socket of the Ray processes (services and actors) is on 127.0.0.1
    sockets = [(c.laddr, c.raddr) for p in psutil.process_iter() if p.name().startswith(("raylet", "gcs_server", "ray::"))
               for c in _connections(p) if c.family.name.startswith("AF_INET")]
    trainer.stop()
    assert sockets
    outside = [s for s in sockets if not all(address.ip in ("127.0.0.1", "::ffff:127.0.0.1") for address in s if address)]
    assert not outside, f"Ray sockets off the loopback: {outside}"
    assert set(pids) == {"worker 0", "worker 1", "evaluator"}
    assert nodes["worker 0"] != nodes["worker 1"], f"the workers should run on both nodes: {nodes}"
    wait_for(lambda: not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                             for pid in pids.values()), 30, "the actors' processes to exit")
    assert trainer.process_ids() == {} and not ray.is_initialized()


def test_status_makes_no_remote_call_once_the_actors_are_placed(tmp_path, cluster, monkeypatch):
    """The dashboard asks for the status four times a second: on Ray that must not cost a round trip to
    every actor (their places are asked once) nor the weights (progress is the server's step count)."""
    trainer = Trainer(catch(tmp_path, cluster, max_minutes=2), verbose=False)
    with trainer:
        wait_for(lambda: trainer.steps > 200 and len(trainer.process_ids()) == 3, 120, "the actors placed")
        calls, me = [], threading.current_thread()  # this thread's calls: the reader's own check() goes on
        for name in ("get", "wait"):
            real = getattr(ray, name)
            monkeypatch.setattr(ray, name, lambda *args, _real=real, _name=name, **kwargs:
                                (threading.current_thread() is me and calls.append(_name)) or _real(*args, **kwargs))
        pulls = []
        server_pull = trainer._session.group.server.pull
        monkeypatch.setattr(trainer._session.group.server, "pull", type("Counted", (), {
            "remote": staticmethod(lambda *a: pulls.append(1) or server_pull.remote(*a))})())
        for _ in range(40):
            status = trainer.status()
        assert status["processes_alive"] == 3 and calls == [], calls
        steps = trainer.steps
        wait_for(lambda: trainer.steps > steps, 30, "the step count to come from the server")  # check() each second
        assert pulls == [], "the reader pulled the weights to learn the step count"
        monkeypatch.undo()


def test_a_killed_worker_actor_is_restarted_and_training_goes_on(tmp_path, cluster):
    trainer = Trainer(catch(tmp_path, cluster, max_minutes=3), verbose=False)
    with trainer:
        wait_for(lambda: trainer.steps > 500 and "worker 1" in trainer.process_ids(), 120, "the first steps")
        victim = trainer.process_ids()["worker 1"]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: trainer.restarts == 1, 60, "the restart")
        steps_then = trainer.steps
        wait_for(lambda: trainer.steps > steps_then + 1000 and trainer.process_ids().get("worker 1") not in (None, victim),
                 90, "steps after the restart, and worker 1 back in a new process")
        errors = [e for e in trainer.history.errors if e["source"] == "worker 1"]
        assert trainer.running and trainer.failure is None
    assert len(errors) == 1 and "restarted" in errors[0]["error"]


def test_a_dead_parameter_server_stops_the_run_once_and_says_its_last_checkpoint_holds_the_run(tmp_path, cluster):
    trainer = Trainer(catch(tmp_path, cluster, max_minutes=5), verbose=False)
    trainer.start()
    try:
        wait_for(lambda: trainer.steps > 300, 120, "the first steps")
        kept = trainer.save()
        ray.kill(trainer._session.group.server)  # as if its node went away: Ray does not bring it back
        assert trainer.wait(60), "the run should stop by itself once its server is gone"
    finally:
        trainer.close()
    assert "parameter server" in trainer.failure and trainer.save_error and "lost" in trainer.save_error
    assert sorted((tmp_path / trainer.run_dir.name / "checkpoints").glob("*.pt")) == [kept]  # no stale "final" save
    errors = len(trainer.history.errors)
    assert errors <= 1 + trainer.config.workers + 1, [e["error"][-200:] for e in trainer.history.errors]  # once each
    time.sleep(3)
    assert len(trainer.history.errors) == errors and not ray.is_initialized()  # no error loop, Ray left


def test_a_dead_mailbox_stops_the_run_with_a_final_checkpoint_from_the_servers_weights(tmp_path, cluster):
    trainer = Trainer(catch(tmp_path, cluster, max_minutes=5), verbose=False)
    trainer.start()
    try:
        wait_for(lambda: trainer.steps > 300, 120, "the first steps")
        ray.kill(trainer._session.group.mailbox)
        assert trainer.wait(60), "the run should stop by itself once its mailbox is gone"
    finally:
        trainer.close()
    assert "mailbox" in trainer.failure and trainer.save_error is None
    assert load_run(trainer.last_checkpoint)[1]["counters"]["steps"] > 300
    errors = len(trainer.history.errors)
    time.sleep(3)
    assert len(trainer.history.errors) == errors <= 1 + trainer.config.workers + 1 and not ray.is_initialized()


def test_resume_from_local_on_ray_and_back(tmp_path, cluster):
    """A checkpoint moves between the backends both ways, with its weights, Adam's state and counters."""
    local = Trainer(A3CConfig.preset("catch", run_dir=str(tmp_path), max_steps=2000, eval_steps_per_second=0),
                    verbose=False)
    with local:
        assert local.wait(600), "the local run should stop by itself at max_steps"
    first = local.last_checkpoint
    _, saved = load_run(first)

    on_ray = Trainer.from_checkpoint(first, verbose=False, backend="ray", ray_address=cluster, max_steps=4000)
    adam_steps_before = next(iter(on_ray.optimizer.state.values()))["step"].item()
    on_ray.start()
    assert on_ray.wait(600), "the Ray run should stop by itself at max_steps"
    second = on_ray.last_checkpoint
    config, payload = load_run(second)
    assert config.backend == "ray" and 4000 <= payload["counters"]["steps"] < 4000 + 200
    state = payload["optimizer"]["state"][0]
    assert state["step"].item() > adam_steps_before > 0  # Adam went on from the local run's moments
    assert not torch.equal(payload["model"]["policy.weight"], saved["model"]["policy.weight"])
    assert len(on_ray.history.evals) > len(local.history.evals)  # the history came along

    back = Trainer.from_checkpoint(second, verbose=False, backend="local", max_steps=6000)
    back.start()
    assert back.wait(600), f"the local run after Ray should stop by itself at max_steps: {back.status()}"
    _, third = load_run(back.last_checkpoint)
    assert third["counters"]["steps"] >= 6000
    assert third["optimizer"]["state"][0]["step"].item() > state["step"].item()


def _connections(process: psutil.Process) -> list:
    try:
        return process.net_connections(kind="inet")
    except psutil.Error:
        return []


def test_the_cli_joins_a_cluster_that_ray_start_opened_with_token_authentication(tmp_path):
    """Since Ray 2.59, ``ray start --head`` turns token authentication on where a token exists (any
    private Ray writes one to ``~/.ray/auth_token``); the cluster then refuses clients without it.
    The README's two commands, ``ray start --head`` then ``train --ray-address``, must still work."""
    pytest.importorskip("ray._private.authentication", reason="Ray before 2.52 has no token authentication")
    home, temp = tmp_path / "home", Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: socket paths
    env = {**os.environ, "HOME": str(home), "RAY_worker_niceness": "0"}
    env.pop("RAY_AUTH_MODE", None)
    ray_cli = [str(Path(sys.executable).with_name("ray"))]
    subprocess.run(ray_cli + ["get-auth-token", "--generate"], env=env, capture_output=True, check=True, timeout=60)
    with socket.socket() as probe:  # a free port for the head
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        started = subprocess.run(ray_cli + ["start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                                            "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats",
                                            "--temp-dir", str(temp)], env=env, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        assert "Token authentication is enabled" in started.stderr + started.stdout
        result = subprocess.run([sys.executable, "-m", "a3c_core", "train", "--preset", "catch", "--backend", "ray",
                                 "--ray-address", f"127.0.0.1:{port}", "--workers", "1", "--max-steps", "100",
                                 "--run-dir", str(tmp_path / "runs")], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert list((tmp_path / "runs").glob("catch-*/checkpoints/step-*.pt"))
    finally:  # this cluster's processes only (`ray stop` would stop the module's cluster too)
        for signal_it in ("terminate", "kill"):  # GCS and Ray's monitor can take 30 s to end on SIGTERM
            for process in ray_processes(str(temp)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    getattr(process, signal_it)()
            psutil.wait_procs(ray_processes(str(temp)), timeout=5)
        assert not ray_processes(str(temp))
        shutil.rmtree(temp, ignore_errors=True)


def test_an_unreachable_cluster_is_one_sentence(tmp_path):
    config = catch(tmp_path, "127.0.0.1:9")  # the discard port: nothing listens there
    trainer = Trainer(config, verbose=False)
    with pytest.raises(ConnectionError, match="cannot reach the Ray cluster at ray_address='127.0.0.1:9'"):
        trainer.start()
    assert not trainer.running and not ray.is_initialized()
    result = subprocess.run([sys.executable, "-m", "a3c_core", "train", "--preset", "catch", "--backend", "ray",
                             "--ray-address", "127.0.0.1:9", "--run-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach the Ray cluster at ray_address=")
    assert "Traceback" not in result.stderr


@contextlib.contextmanager
def listener(reply: bytes | None):
    """A TCP server on 127.0.0.1 that is not Ray: it answers every connection with ``reply`` (None: it stays
    silent), and keeps the connection open. Yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = server.accept()
                connections.append(connection)
                if reply is not None:
                    connection.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for connection in connections:
            connection.close()


@pytest.mark.parametrize("reply", [None, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"],
                         ids=["silent", "web-server"])
def test_a_program_at_the_ray_address_that_is_not_ray_is_one_sentence(tmp_path, reply):
    from a3c_core.ray_backend import answers_like_ray

    with listener(reply) as port:
        assert not answers_like_ray("127.0.0.1", port, timeout=2.0)
        # Before: Ray's client waited for that GCS forever, printing a warning every few seconds.
        result = subprocess.run([sys.executable, "-m", "a3c_core", "train", "--preset", "catch", "--backend", "ray",
                                 "--ray-address", f"127.0.0.1:{port}", "--run-dir", str(tmp_path)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach the Ray cluster at ray_address='127.0.0.1:{port}'") and (
        "does not answer as Ray's GCS does" in last), last


def test_the_head_of_a_ray_cluster_answers_like_ray(cluster):
    from a3c_core.ray_backend import answers_like_ray

    host, port = cluster.rsplit(":", 1)
    assert answers_like_ray(host, int(port))


@pytest.mark.parametrize("signals", [["SIGTERM"], ["SIGHUP"], ["SIGINT", "SIGINT"]], ids=["term", "hup", "double-ctrl-c"])
def test_signals_stop_a_ray_run_of_the_cli_with_a_final_checkpoint_and_no_ray_left(tmp_path, signals):
    ray_dir = tempfile.mkdtemp(prefix="r", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    env = {**os.environ, "RAY_TMPDIR": ray_dir}
    process = subprocess.Popen([sys.executable, "-m", "a3c_core", "train", "--preset", "catch", "--backend", "ray",
                                "--workers", "1", "--run-dir", str(tmp_path), "--name", "sig"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = tmp_path / "sig" / "metrics.jsonl"
    try:
        wait_for(lambda: metrics.exists() and '"kind": "episode"' in metrics.read_text(), 180, "a training episode")
        for name in signals:  # to the command alone, as timeout, docker stop or a scheduler sends it
            os.kill(process.pid, getattr(signal, name))
            time.sleep(0.05)
        _, err = process.communicate(timeout=120)
        # nothing of its private Ray outlives it by more than a few seconds
        wait_for(lambda: not ray_processes(ray_dir), 10, "the private Ray's processes to exit")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for left in ray_processes(ray_dir):
            left.kill()
        shutil.rmtree(ray_dir, ignore_errors=True)
    assert process.returncode == 0, err
    said = "Ctrl-C" if signals[0] == "SIGINT" else signals[0]
    assert "Traceback" not in err and f"{said}: stopping the workers" in err
    assert ("already stopping" in err) == (len(signals) > 1)
    checkpoints = list((tmp_path / "sig" / "checkpoints").glob("step-*.pt"))
    assert len(checkpoints) == 1 and load_run(checkpoints[0])[1]["counters"]["steps"] > 0


def test_the_overhead_benchmark_measures_both_backends_and_the_server(tmp_path):
    out = tmp_path / "overhead.json"
    result = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "benchmarks" / "ray_overhead.py"),
                             "--game", "catch", "--workers", "1", "--seconds", "10", "--warmup", "2", "--repeats", "1",
                             "--updates", "20", "--out", str(out)], capture_output=True, text=True, timeout=240,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    measured = json.loads(out.read_text())
    assert all(rate > 0 for rates in measured["rates"]["1"].values() for rate in rates)
    parameters = sum(p.numel() for p in ActorCritic.from_config(A3CConfig.preset("fast", game="catch"), 3).parameters())
    assert measured["server"]["bytes_in"] == measured["server"]["bytes_out"] == 4 * parameters
    assert measured["server"]["updates_per_second"] > 0 and measured["server"]["round_trip_ms"] > 0
    local_cpu, ray_cpu = (measured["cpu_cores"]["1"][backend][0] for backend in ("local", "ray"))
    assert local_cpu["workers"] > 0 and ray_cpu["workers"] > 0 and ray_cpu["parameter server"] > 0
    assert {"raylet", "GCS", "mailbox"} <= set(ray_cpu) and not {"parameter server", "raylet"} & set(local_cpu)
    assert "| 1 | " in result.stdout and "| 1 | ray | " in result.stdout and "One parameter server" in result.stdout


def test_the_overhead_benchmark_refuses_an_out_it_cannot_write_in_one_sentence(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ray_overhead.py"
    for out, reason in ((tmp_path, "it is a folder"), (Path("/proc/no/such.json"), "No such file or directory")):
        result = subprocess.run([sys.executable, str(script), "--out", str(out)], capture_output=True, text=True,
                                timeout=120, cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].endswith(reason) and f"--out {out}" in result.stderr


def test_both_backends_run_the_one_worker_loop_each_through_its_own_link(cluster):
    """Notebook 09: the Ray worker runs the local backend's own loop (``worker.train``); only the link
    differs. A ServerLink loads the server's weights and pushes a gradient: one Adam step on the
    server, the steps counted, the new weights back; once the server stops, ``pull`` says so."""
    from a3c_core import ray_actors, worker
    from a3c_core.shared import SharedMemoryLink
    assert ray_actors.train is worker.train and not hasattr(ray_actors, "remote_train_loop")
    for link in (ray_actors.ServerLink, SharedMemoryLink):
        assert callable(link.pull) and callable(link.push), link
    config = A3CConfig.preset("catch", workers=1)
    torch.manual_seed(0)
    model = ActorCritic.from_config(config, 3)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=cluster, log_to_driver=False)
    server = ray_actors.ParameterServer.remote(config, 3, model.state_dict(),
                                               torch.optim.Adam(model.parameters()).state_dict(), 10)
    try:
        link, local = ray_actors.ServerLink(server), ActorCritic.from_config(config, 3)
        assert link.pull(local) and link.steps == 10
        assert all(torch.equal(a, b) for a, b in zip(local.parameters(), model.parameters()))
        for parameter in local.parameters():
            parameter.grad = torch.ones_like(parameter)
        link.push(local, 30)
        assert link.steps == 40 and ray.get(server.state.remote())["updates"] == 1
        assert link.pull(local) and not torch.equal(local.policy.weight, model.policy.weight)  # Adam moved them
        ray.get(server.stop.remote())
        link.push(local, 30)
        assert not link.pull(local) and link.steps == 70
    finally:
        ray.kill(server)
        if started_here:
            ray.shutdown()


def test_a_diverged_ray_run_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, cluster):
    trainer = Trainer(catch(tmp_path, cluster), run_dir=tmp_path / "run", verbose=False)
    good = trainer.save()
    with torch.no_grad():  # what a too-large step does to the weights the server starts from
        trainer.model.value.weight.fill_(float("inf"))
    trainer.start()
    assert trainer.wait(timeout=120), "a diverged run must stop by itself"
    assert trainer.failure and "the run diverged" in trainer.failure
    assert trainer.restarts == 0 and trainer.history.errors
    assert all(error.get("diverged") for error in trainer.history.errors)  # reported, not restarted in a loop
    assert [p.name for p in (tmp_path / "run" / "checkpoints").glob("*.pt")] == [good.name]
    assert trainer.last_checkpoint == good and not ray.is_initialized()
