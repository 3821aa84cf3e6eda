"""The checks of notebook 03: shared memory and processes."""

from __future__ import annotations

import torch
from torch import nn

from .. import shared
from .exercise import Answer, Case, Exercise, first_parameter


def _twin_case(seed: int, stale: bool = False) -> Case:
    """A "local" model with a gradient and a "shared" one in shared memory (holding an earlier gradient
    if ``stale``)."""
    torch.manual_seed(seed)
    local, shared = (nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)) for _ in range(2))
    shared.share_memory()
    local(torch.randn(8, 4)).pow(2).sum().backward()
    for p in shared.parameters() if stale else ():
        p.grad = torch.full_like(p, 7.0)
    return {"args": (local, shared), "local": local, "shared": shared,
            "how": " (an earlier gradient was added to, not replaced)" if stale else ""}


def _shared_weights_changed(a: Answer) -> str | None:
    """The first shared parameter no longer equal to its copy in ``before``, made before the student's function
    ran."""
    return first_parameter(lambda p, old: not torch.equal(p, old), a.shared, a.before[1])


#: Exercise 03.1: ``student_fn(local, shared)`` hands the local gradients to the shared parameters.
copy_gradients = Exercise(
    "copy_gradients", None, lambda: (_twin_case(5, stale) for stale in (False, True)),
    [(_shared_weights_changed, "the shared weights changed; only the gradients should be handed over, the optimizer "
                               "changes the weights afterwards"),
     (lambda a: first_parameter(lambda p, mine: p.grad is None, a.shared, a.local),
      "the shared parameter {found} still has no .grad: set shared_param.grad = local_param.grad"),
     (lambda a: first_parameter(lambda p, mine: not torch.allclose(p.grad, mine.grad), a.shared, a.local),
      "the shared parameter {found} got a gradient different from the local one{how}; it should be exactly "
      "local_param.grad")],
    "Right: the shared parameters now carry the local gradients and their weights are untouched, ready for "
    "SharedAdam.step().", answers=(shared.copy_gradients,),
    errors=((lambda error: isinstance(error, TypeError) and "NoneType" in str(error),
             "a shared parameter's .grad starts as None, with nothing to add to: set it, "
             "shared_param.grad = local_param.grad"),))

#: Exercise 03.2: ``student_fn(local, shared)`` copies the shared weights into the private local model.
sync_local = Exercise(
    "sync_local", None, lambda: [_twin_case(6)],
    [(_shared_weights_changed, "the shared model changed: the copy goes from the shared model to the local one, "
                               "local.load_state_dict(shared.state_dict())"),
     (lambda a: first_parameter(lambda p, mine: not torch.equal(mine, p), a.shared, a.local),
      "the local {found} still differs from the shared one: load the shared weights into the local model"),
     (lambda a: first_parameter(lambda p, mine: mine.data_ptr() == p.data_ptr(), a.shared, a.local),
      "the local model now uses the shared model's memory; it must stay a private copy (values copied, as "
      "load_state_dict does), or its own updates would write the shared weights")],
    "Right: the local model holds the newest shared weights in its own private memory.",
    answers=(shared.SharedMemoryLink.pull,))
