"""SharedAdam equals torch's Adam, and updates made in one process are seen by others."""

import multiprocessing as mp
import subprocess
import sys

import torch

from a3c_core.demos import count_up, fill_in_child
from a3c_core.model import ActorCritic
from a3c_core.shared import SharedAdam, copy_gradients


def small_model(seed: int = 0) -> ActorCritic:
    torch.manual_seed(seed)
    return ActorCritic(3, 4, 32, 32, hidden_size=16)


def test_shared_adam_equals_torch_adam_step_for_step():
    shared, reference, local = small_model(), small_model(), small_model(1)
    shared.share_memory()
    shared_adam = SharedAdam(shared.parameters(), lr=1e-3)
    adam = torch.optim.Adam(reference.parameters(), lr=1e-3)
    torch.manual_seed(2)
    for _ in range(10):
        state, hidden = torch.rand(3, 3, 32, 32), torch.rand(3, 16)
        local.load_state_dict(shared.state_dict())
        local.zero_grad()
        logits, value, _ = local(state, hidden)
        (logits.pow(2).sum() + value.pow(2).sum()).backward()
        copy_gradients(local, shared)
        shared_adam.step()

        adam.zero_grad()
        logits, value, _ = reference(state, hidden)
        (logits.pow(2).sum() + value.pow(2).sum()).backward()
        adam.step()
        for a, b in zip(shared.parameters(), reference.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    first = next(shared.parameters())
    assert shared_adam.state[first]["step"].item() == 10


def test_optimizer_state_lives_in_shared_memory_also_after_loading():
    model = small_model().share_memory()
    optimizer = SharedAdam(model.parameters())
    tensors = [v for state in optimizer.state.values() for v in state.values()]
    assert len(tensors) == 3 * len(list(model.parameters())) and all(t.is_shared() for t in tensors)
    saved = optimizer.state_dict()
    optimizer.load_state_dict(saved)
    assert all(v.is_shared() for state in optimizer.state.values() for v in state.values())


def child_update(shared: ActorCritic, optimizer: SharedAdam, seed: int) -> None:
    """In a child process: one gradient step on a local copy, applied to the shared model."""
    torch.manual_seed(seed)
    local = small_model(5)
    local.load_state_dict(shared.state_dict())
    logits, value, _ = local(torch.rand(2, 3, 32, 32), local.initial_state(2))
    (logits.sum() + value.sum()).backward()
    copy_gradients(local, shared)
    optimizer.step()


def child_report(shared: ActorCritic, results) -> None:
    """In another child process: what the shared weights look like from here."""
    results.put(sum(p.double().sum().item() for p in shared.parameters()))


def test_a_child_update_reaches_the_shared_model_and_other_processes_see_it():
    shared = small_model().share_memory()
    optimizer = SharedAdam(shared.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in shared.parameters()]
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=child_update, args=(shared, optimizer, 7))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    unchanged = [name for (name, p), b in zip(shared.named_parameters(), before) if torch.equal(p, b)]
    assert unchanged == ["gru.weight_hh"], "from a zero hidden state, only W_hh gets no gradient"
    assert all(state["step"].item() == 1 for state in optimizer.state.values())  # shared step count

    # The same step computed here, with torch's own Adam, gives the same weights.
    expected = small_model()
    child_update(expected, torch.optim.Adam(expected.parameters(), lr=1e-2), 7)
    for a, b in zip(shared.parameters(), expected.parameters()):
        torch.testing.assert_close(a, b)

    results = ctx.Queue()
    reporter = ctx.Process(target=child_report, args=(shared, results))
    reporter.start()
    seen = results.get(timeout=60)
    reporter.join(60)
    assert seen == sum(p.double().sum().item() for p in shared.parameters())


def test_count_up_counts_and_a_lock_never_loses_an_update():
    """Notebook 03's demonstrations, in one process: every addition lands, nobody waits."""
    counter = torch.zeros(2)
    count_up(counter, 50, mp.Barrier(1), mp.Lock())
    count_up(counter, 25, mp.Barrier(1))
    assert counter.tolist() == [75.0, 0.0]  # 75 additions; alone, a process never finds the lock taken
    data = torch.zeros(3)
    fill_in_child(data, 7.0)
    assert data.tolist() == [7.0, 7.0, 7.0]


def test_building_stepping_saving_and_loading_never_imports_torchs_compiler() -> None:
    """torch's compiler (torch._dynamo: about 800 modules, 70 MB in each process) is imported by the
    wrappers torch puts around Optimizer's methods; a kernel that builds, saves and loads the shared
    Adam, and a worker that steps it, must not pay for it. In a fresh interpreter, so that nothing
    imported before counts."""
    code = """
import sys, torch
from torch import nn
from a3c_core.shared import SharedAdam
model = nn.Linear(4, 2)
optimizer = SharedAdam(model.parameters(), lr=1e-3)
model(torch.ones(1, 4)).sum().backward()
optimizer.step()
optimizer.load_state_dict(optimizer.state_dict())
assert all(value.is_shared() for state in optimizer.state.values() for value in state.values())
print(int(optimizer.state[model.weight]["step"]), sorted(m for m in sys.modules if m.startswith("torch._dynamo"))[:3])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "[]"], result.stdout
