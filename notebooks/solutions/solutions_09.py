"""Reference solutions of notebook 09 (beyond one machine). Check them with ``a3c_core.checks``."""


def my_bytes_per_update(n_parameters: int) -> int:
    """Bytes of one update in one direction: every parameter (or its gradient) as a 4-byte float32."""
    return 4 * n_parameters


def my_workers_per_server(server_updates_per_second: float, worker_steps_per_second: float,
                          rollout_steps: int) -> float:
    """How many workers one parameter server keeps up with: its capacity over one worker's updates/s
    (a worker sends one gradient per rollout)."""
    return server_updates_per_second / (worker_steps_per_second / rollout_steps)
