"""The checks of notebook 09: beyond one machine."""

from __future__ import annotations

import math


from .exercise import Exercise, mistake, not_a_number


#: Exercise 09.1: ``student_fn(n_parameters)`` -> the bytes of one update in one direction.
bytes_per_update = Exercise(
    "bytes_per_update", lambda n: 4 * n, lambda: ({"args": (n,)} for n in (445_511, 838_871, 1_000, 7)),
    [(not_a_number, "return one number of bytes, got {kind} {got!r}"),
     (mistake(lambda n: n), "{got:,} is the number of parameters; each travels as a float32 of 4 bytes"),
     (mistake(lambda n: 8 * n), "{got:,} is both ways together (or float64); one way, the gradient or the weights, "
                       "is 4 bytes per parameter"),
     (mistake(lambda n: 2 * n), "{got:,} would be float16; the model's parameters and their gradients are float32, 4 bytes"),
     (lambda a: not a.close(a.got, a.want), "for {n:,} parameters one direction carries {want:,} bytes, you gave {got!r}")],
    "Right: 4 bytes per parameter each way: 1.78 MB for the fast preset's 445,511 parameters.", atol=0.5)

#: Exercise 09.2: ``student_fn(server_updates_per_second, worker_steps_per_second, rollout_steps)`` ->
#: how many workers one parameter server can keep up with.
workers_per_server = Exercise(
    "workers_per_server", lambda server, steps, rollout: server * rollout / steps,
    lambda: ({"args": args} for args in ((150.0, 700.0, 30), (400.0, 500.0, 20), (90.0, 1200.0, 5))),
    [(not_a_number, "return one number of workers, got {kind} {got!r}"),
     (mistake(lambda server, steps, rollout: server / steps),
      "a worker sends one gradient per rollout, not per step: it sends {steps} / {rollout} updates per second"),
     (mistake(lambda server, steps, rollout: steps / rollout / server),
      "that is upside down: the server's capacity divided by one worker's updates per second is the number of "
      "workers"),
     (lambda a: not a.close(a.got, a.want) and a.got != math.floor(a.want), "a server that applies {server} updates/s feeds {want:.1f} workers of {steps} steps/s "
                              "with {rollout}-step rollouts; you gave {got!r}")],
    "Right: the server's updates/s divided by one worker's (its steps/s over rollout_steps); whole workers "
    "(rounded down) count too.", atol=1e-6)
