"""Self-checks for the notebook exercises (notebooks 00-04).

A student writes a function in a notebook cell and passes it to a check::

    checks.crop(my_crop)

The check runs the function on hidden cases, compares what it returns with the package's own code
(``preprocess.crop``, ``loss.n_step_returns``, ...) and answers with a :class:`CheckResult`: passed
or not, and one friendly sentence that says what is right or what to look at. A function that still
raises ``NotImplementedError`` (the exercise skeleton) gets "not done yet", never a crash. The
verdict shows when the check is the last line of a cell (``print()`` it otherwise).

The reference answers live in ``notebooks/solutions/``; ``tests/test_checks.py`` runs every check on
them (they must pass) and on deliberately wrong answers (they must fail with a helpful sentence).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import loss, model, preprocess


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check: ``passed`` and one sentence for the student."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{'✅' if self.passed else '❌'} {self.message}"


class _NotDone(Exception):
    """The student's function still raises ``NotImplementedError``."""


class _Wrong(Exception):
    """The student's function gave a wrong answer; the message says which and why."""


def _verdict(student_fn: Callable[..., Any], run_cases: Callable[[Callable[..., Any]], None], success: str) -> CheckResult:
    """Run ``run_cases(student_fn)`` and turn its outcome into a :class:`CheckResult`."""
    name = getattr(student_fn, "__name__", "your function")
    if not callable(student_fn):
        return CheckResult(False, f"Pass the function itself (without calling it), e.g. checks.crop(my_crop); got a {type(student_fn).__name__}.")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the hidden cases are tiny; extra threads only slow them on a busy machine
    try:
        run_cases(student_fn)
    except _NotDone:
        return CheckResult(False, f"Not done yet: `{name}` still raises NotImplementedError; replace that line with "
                                  "your code and run both cells again.")
    except _Wrong as wrong:
        return CheckResult(False, f"Not quite: {wrong}")
    except Exception as error:  # what the function returned could not even be compared
        return CheckResult(False, f"Not quite: what `{name}` returned could not be compared with the expected answer "
                                  f"({type(error).__name__}: {error}); check the type and shape it returns.")
    finally:
        torch.set_num_threads(threads)
    return CheckResult(True, success)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call the student's function; its own errors become a friendly :class:`_Wrong`."""
    try:
        return fn(*args)
    except NotImplementedError as error:
        raise _NotDone from error
    except Exception as error:  # any error of the student's code is reported, not raised
        raise _Wrong(f"`{getattr(fn, '__name__', 'your function')}` raised {type(error).__name__}: {error}") from error


def _as_float_array(value: Any, what: str) -> np.ndarray:
    """A list, numpy array or tensor as a float64 numpy array (for comparing numbers)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        raise _Wrong(f"{what} should be numbers (a list, numpy array or tensor), got {type(value).__name__}") from error


def _scalar_tensor(value: Any, what: str) -> torch.Tensor:
    """Insist on a 0-d (or one-element) tensor that can be backpropagated through."""
    if not isinstance(value, torch.Tensor):
        raise _Wrong(f"{what} should be a torch tensor (so that .backward() can follow it), got {type(value).__name__}")
    if value.numel() != 1:
        raise _Wrong(f"{what} should be one number (sum over the rollout), got a tensor of shape {tuple(value.shape)}")
    return value.reshape(()).to(torch.float32)


# ------------------------------------------------------------------------------------------------
# Notebook 00: is everything installed?
# ------------------------------------------------------------------------------------------------
INSTALL_ADVICE = "from the repository root, run `make lab` (or `pip install -e .` in your environment)"


def rom_present(game: str) -> CheckResult:
    """Whether ale-py ships the ROM of ``game`` (an ALE name such as ``"pong"`` or ``"space_invaders"``)."""
    try:
        import ale_py.roms
        with warnings.catch_warnings():  # ale-py warns about an unknown name; the verdict says it better
            warnings.simplefilter("ignore")
            path = ale_py.roms.get_rom_path(game)
    except Exception as error:  # an old or broken ale-py: say so, with the fix
        return CheckResult(False, f"Could not look up the {game} ROM ({type(error).__name__}: {error}); install "
                                  f"ale-py >= 0.9, which ships the ROMs: {INSTALL_ADVICE}.")
    if path is None or not os.path.exists(path):
        return CheckResult(False, f"ale-py has no ROM for {game!r}; ale-py >= 0.9 ships Pong and Space Invaders: "
                                  f"{INSTALL_ADVICE}.")
    return CheckResult(True, f"ROM for {game} found ({os.path.basename(path)}).")


def setup() -> list[CheckResult]:
    """Everything the lessons need, one verdict per item: Python, packages, ROMs, cores, ``spawn``."""
    results = []
    python = ".".join(map(str, sys.version_info[:3]))
    results.append(CheckResult(sys.version_info >= (3, 10), f"Python {python}" + (
        "." if sys.version_info >= (3, 10) else f"; the lessons need 3.10 or newer: {INSTALL_ADVICE}.")))
    for package in ("torch", "gymnasium", "ale_py", "numpy", "cv2", "matplotlib", "ipywidgets"):
        try:
            module = importlib.import_module(package)
        except ImportError as error:
            results.append(CheckResult(False, f"{package} is missing ({error}): {INSTALL_ADVICE}."))
        else:
            results.append(CheckResult(True, f"{package} {getattr(module, '__version__', '(version unknown)')}."))
    results += [rom_present("pong"), rom_present("space_invaders")]
    cores = os.cpu_count() or 1
    results.append(CheckResult(cores >= 2, f"{cores} CPU cores" + (
        "; A3C runs one process per core, so training will use all of them." if cores >= 2 else
        "; A3C needs at least 2 to run workers side by side: use a machine with more cores for notebook 05.")))
    spawn = "spawn" in multiprocessing.get_all_start_methods()
    results.append(CheckResult(spawn, "The 'spawn' start method is available." if spawn else
                               "The 'spawn' start method is missing, which the trainer needs: use CPython 3.10+."))
    return results


# ------------------------------------------------------------------------------------------------
# Notebook 01: observations
# ------------------------------------------------------------------------------------------------
def _hidden_frames() -> Iterator[np.ndarray]:
    """Frames whose every row and column is recognizable: channel 0 = row, 1 = column, 2 = random."""
    rows, cols = np.meshgrid(np.arange(210), np.arange(160), indexing="ij")
    marked = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    marked[..., 2] = np.random.default_rng(1).integers(0, 256, (210, 160), dtype=np.uint8)
    yield marked
    yield np.random.default_rng(2).integers(0, 256, (210, 160, 3), dtype=np.uint8)


def _crop_cases(fn: Callable[[np.ndarray], np.ndarray]) -> None:
    for frame in _hidden_frames():
        original = frame.copy()
        got = _call(fn, frame)
        want = preprocess.crop(original)
        if not isinstance(got, np.ndarray):
            raise _Wrong(f"return a numpy array (a slice of the frame), got {type(got).__name__}")
        if not np.array_equal(frame, original):
            raise _Wrong("your function changed the frame it was given; a crop only selects rows, it writes nothing")
        if got.shape == original.shape:
            raise _Wrong("you returned the whole (210, 160, 3) frame; keep only rows 35..194: frame[35:195]")
        if got.ndim == 3 and got.shape[0] == 210:
            raise _Wrong(f"the result has shape {got.shape}: you cut columns (axis 1); rows are axis 0, frame[top:bottom]")
        if got.shape != want.shape:
            raise _Wrong(f"for a (210, 160, 3) frame you returned shape {got.shape}; keeping rows 35..194 gives {want.shape}")
        if got.dtype != want.dtype:
            raise _Wrong(f"the crop changed the dtype to {got.dtype}; keep uint8, a crop only selects rows")
        if not np.array_equal(got, want):
            rows_marked = np.array_equal(original[:, 0, 0], np.arange(210))  # channel 0 holds the row number
            where = f" (your first row is row {int(got[0, 0, 0])})" if rows_marked else ""
            raise _Wrong(f"the shape is right but the rows are not{where}: the state starts at row 35 (the "
                         "first row below the score) and stops before row 195 (the bottom border)")


def crop(student_fn: Callable[[np.ndarray], np.ndarray]) -> CheckResult:
    """Exercise 01.1: ``student_fn(frame)`` keeps rows 35..194 of a ``(210, 160, 3)`` frame -> ``(160, 160, 3)``."""
    return _verdict(student_fn, _crop_cases, "Right: rows 35..194 of every column, 160x160, still uint8, "
                                             "the same rows as preprocess.crop.")


def _normalize_cases(fn: Callable[[np.ndarray], np.ndarray]) -> None:
    rng = np.random.default_rng(3)
    images = [np.array([[[0], [255]], [[128], [1]]], dtype=np.uint8),
              rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)]
    for image in images:
        original = image.copy()
        got = _call(fn, image)
        want = preprocess.normalize(original)
        if not isinstance(got, np.ndarray):
            raise _Wrong(f"return a numpy array, got {type(got).__name__}")
        if not np.array_equal(image, original):
            raise _Wrong("your function changed its input in place; return a new float32 array instead")
        if got.shape != want.shape:
            raise _Wrong(f"an image of shape {image.shape} came back with shape {got.shape}; normalizing keeps the shape")
        if got.dtype != np.float32:
            hint = " (integer division // rounds everything to 0 or 1)" if np.issubdtype(got.dtype, np.integer) else ""
            raise _Wrong(f"the result has dtype {got.dtype}{hint}; the model works in float32: image.astype(np.float32) / 255")
        if not np.allclose(got, want, atol=1e-6):
            top = float(got.max())
            if top > 1.0 + 1e-6:
                raise _Wrong(f"values reach {top:g}; divide by 255 so that 0..255 becomes 0..1")
            if abs(float(got[image == 255].min(initial=1.0)) - 1.0) > 1e-6:
                raise _Wrong("a white pixel (255) should become exactly 1.0: divide by 255, not 256")
            raise _Wrong("some values differ from pixel / 255; each pixel p should become p / 255")


def normalize(student_fn: Callable[[np.ndarray], np.ndarray]) -> CheckResult:
    """Exercise 01.2: ``student_fn(image)`` maps uint8 0..255 to float32 0..1, same shape."""
    return _verdict(student_fn, _normalize_cases, "Right: float32 in 0..1, 255 becomes 1.0, same shape, input untouched.")


def _state_cases(fn: Callable[[np.ndarray, int, int], np.ndarray]) -> None:
    frame = next(_hidden_frames())
    for height, width in ((160, 160), (80, 80), (42, 64)):
        got = _call(fn, frame.copy(), height, width)
        want = preprocess.preprocess(frame, height, width)
        if not isinstance(got, np.ndarray):
            raise _Wrong(f"return a numpy array, got {type(got).__name__}")
        if got.shape == (height, width, 3):
            raise _Wrong(f"for {height}x{width} you returned {got.shape}, channels last; nn.Conv2d wants channels "
                         f"first {want.shape}: preprocess.to_channels_first")
        if got.shape != want.shape:
            raise _Wrong(f"for height={height}, width={width} the state should have shape {want.shape} (C, H, W), got {got.shape}")
        if got.dtype != np.float32:
            raise _Wrong(f"the state has dtype {got.dtype}; the model works in float32 (normalize before resizing)")
        if got.max() > 1.0 + 1e-6:
            raise _Wrong(f"values reach {float(got.max()):g}; the state lives in 0..1 (normalize)")
        # Resizing before normalizing differs by at most rounding to whole steps of 1/255: accepted.
        if not np.allclose(got, want, atol=1 / 255 + 1e-6):
            raise _Wrong(f"for {height}x{width} the shape is right but the pixels differ from preprocess.preprocess: "
                         "crop rows 35..194 first, then normalize, resize with preprocess.resize (area "
                         "interpolation), and turn channels first")


def state(student_fn: Callable[[np.ndarray, int, int], np.ndarray]) -> CheckResult:
    """Exercise 01.3: ``student_fn(frame, height, width)`` -> the ``(3, height, width)`` float32 state."""
    return _verdict(student_fn, _state_cases, "Right: crop, 0..1, resized, channels first: the very state the model sees.")


# ------------------------------------------------------------------------------------------------
# Notebook 02: the conv-GRU model
# ------------------------------------------------------------------------------------------------
def _conv_output_size_cases(fn: Callable[[int], int]) -> None:
    for size in (160, 80, 84, 42, 210, 33, 17):
        got = _call(fn, size)
        want = model.conv_output_size(size)
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            raise _Wrong(f"return a whole number of pixels (int), got {type(got).__name__} {got!r}")
        if got != want:
            floor = size
            for _ in range(5):
                floor //= 2
            if got == floor:
                raise _Wrong(f"for {size} pixels you gave {got}, expected {want}: with padding 1 a 3x3 stride-2 conv "
                             "rounds up, floor((n + 2 - 3) / 2) + 1 = ceil(n / 2)")
            if got == (size + 1) // 2:
                raise _Wrong(f"for {size} pixels you gave {got}: that is after one convolution; the model has five")
            raise _Wrong(f"for an input side of {size} pixels you gave {got}; after five convolutions it is {want}")


def conv_output_size(student_fn: Callable[[int], int]) -> CheckResult:
    """Exercise 02.1: ``student_fn(size)`` is the side length after the five 3x3 stride-2 convolutions."""
    return _verdict(student_fn, _conv_output_size_cases,
                    "Right: each convolution takes n to ceil(n/2), five times: 160 -> 5, 84 -> 3.")


def _conv_params_cases(fn: Callable[[int, int, int], int]) -> None:
    for in_ch, out_ch, kernel in ((3, 8, 3), (12, 16, 3), (32, 32, 3), (1, 4, 5)):
        got = _call(fn, in_ch, out_ch, kernel)
        want = sum(p.numel() for p in nn.Conv2d(in_ch, out_ch, kernel).parameters())
        if got == want:
            continue
        if got == in_ch * out_ch * kernel * kernel:
            raise _Wrong(f"for Conv2d({in_ch}, {out_ch}, {kernel}) you counted only the weights ({got}); each output "
                         f"channel also has a bias: {want}")
        raise _Wrong(f"Conv2d({in_ch}, {out_ch}, kernel_size={kernel}) has {want} parameters, you counted {got!r}: "
                     "every output channel has one kernel per input channel plus one bias")


def conv_params(student_fn: Callable[[int, int, int], int]) -> CheckResult:
    """Exercise 02.2: ``student_fn(in_channels, out_channels, kernel)`` counts a Conv2d's parameters."""
    return _verdict(student_fn, _conv_params_cases,
                    "Right: out x in x k x k weights plus out biases, as nn.Conv2d counts them.")


def _sequence_model() -> tuple[model.ActorCritic, torch.Tensor]:
    """A small model and a sequence of 6 random ``(3, 32, 32)`` states (hidden cases of 02.3)."""
    torch.manual_seed(4)
    small = model.ActorCritic(3, 4, height=32, width=32, hidden_size=16)
    return small, torch.rand(6, 3, 32, 32)


def _values_along(net: model.ActorCritic, states: torch.Tensor, carry: bool) -> torch.Tensor:
    """Values of ``states`` one after another, with the hidden state carried or reset at every step."""
    hidden, values = net.initial_state(), []
    with torch.no_grad():
        for state in states:
            _, value, next_hidden = net(state.unsqueeze(0), hidden if carry else net.initial_state())
            values.append(value[0])
            hidden = next_hidden
    return torch.stack(values)


def _run_sequence_cases(fn: Callable[[model.ActorCritic, torch.Tensor], torch.Tensor]) -> None:
    net, states = _sequence_model()
    with torch.no_grad():
        got = _call(fn, net, states.clone())
    got = _as_float_array(got, "the values").reshape(-1)
    want = _values_along(net, states, carry=True).numpy()
    if got.shape != want.shape:
        raise _Wrong(f"for {len(states)} states return {len(states)} values (one per step), got {got.size}")
    if np.allclose(got, want, atol=1e-5):
        return
    if np.allclose(got, _values_along(net, states, carry=False).numpy(), atol=1e-5):
        raise _Wrong("only the first value is right: every step started again from a zero hidden state; pass the "
                     "hidden state each step returns into the next step")
    raise _Wrong("the values differ from running the states one at a time from model.initial_state(), feeding each "
                 "step's new hidden state into the next")


def run_sequence(student_fn: Callable[[model.ActorCritic, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Exercise 02.3: ``student_fn(model, states)`` runs ``(T, C, H, W)`` states in order -> ``(T,)`` values."""
    return _verdict(student_fn, _run_sequence_cases,
                    "Right: one state at a time, the hidden state carried from step to step, as a worker plays.")


# ------------------------------------------------------------------------------------------------
# Notebook 03: shared memory and processes
# ------------------------------------------------------------------------------------------------
def _twin_models(seed: int) -> tuple[nn.Module, nn.Module]:
    """A "local" and a "shared" small model with different weights; the shared one in shared memory."""
    torch.manual_seed(seed)
    local, shared = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)), nn.Sequential(
        nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    shared.share_memory()
    return local, shared


def _copy_gradients_cases(fn: Callable[[nn.Module, nn.Module], None]) -> None:
    for stale in (False, True):
        local, shared = _twin_models(5)
        local(torch.randn(8, 4)).pow(2).sum().backward()
        if stale:  # the shared model still holds the gradient of an earlier update
            for p in shared.parameters():
                p.grad = torch.full_like(p, 7.0)
        weights = [p.detach().clone() for p in shared.parameters()]
        local_grads = [p.grad.clone() for p in local.parameters()]
        _call(fn, local, shared)
        for (name, p), before, grad in zip(shared.named_parameters(), weights, local_grads):
            if not torch.equal(p.detach(), before):
                raise _Wrong("the shared weights changed; only the gradients should be handed over, the optimizer "
                             "changes the weights afterwards")
            if p.grad is None:
                raise _Wrong(f"the shared parameter {name} still has no .grad: set shared_param.grad = local_param.grad")
            if not torch.allclose(p.grad, grad):
                how = " (an earlier gradient was added to, not replaced)" if stale else ""
                raise _Wrong(f"the shared parameter {name} got a gradient different from the local one{how}; "
                             "it should be exactly local_param.grad")


def copy_gradients(student_fn: Callable[[nn.Module, nn.Module], None]) -> CheckResult:
    """Exercise 03.1: ``student_fn(local, shared)`` hands the local gradients to the shared parameters."""
    return _verdict(student_fn, _copy_gradients_cases,
                    "Right: the shared parameters now carry the local gradients and their weights are untouched, "
                    "ready for SharedAdam.step().")


def _sync_cases(fn: Callable[[nn.Module, nn.Module], None]) -> None:
    local, shared = _twin_models(6)
    shared_before = [p.detach().clone() for p in shared.parameters()]
    _call(fn, local, shared)
    for (name, mine), theirs, before in zip(local.named_parameters(), shared.parameters(), shared_before):
        if not torch.equal(theirs.detach(), before):
            raise _Wrong("the shared model changed: the copy goes from the shared model to the local one, "
                         "local.load_state_dict(shared.state_dict())")
        if not torch.equal(mine.detach(), theirs.detach()):
            raise _Wrong(f"the local {name} still differs from the shared one: load the shared weights into the local model")
        if mine.data_ptr() == theirs.data_ptr():
            raise _Wrong("the local model now uses the shared model's memory; it must stay a private copy (values "
                         "copied, as load_state_dict does), or its own updates would write the shared weights")


def sync_local(student_fn: Callable[[nn.Module, nn.Module], None]) -> CheckResult:
    """Exercise 03.2: ``student_fn(local, shared)`` copies the shared weights into the private local model."""
    return _verdict(student_fn, _sync_cases,
                    "Right: the local model holds the newest shared weights in its own private memory.")


# ------------------------------------------------------------------------------------------------
# Notebook 04: the loss
# ------------------------------------------------------------------------------------------------
#: Hidden rollouts for the loss exercises: (rewards, bootstrap value, gamma).
_ROLLOUTS: list[tuple[list[float], float, float]] = [
    ([0.0, 0.0, 1.0], 0.0, 0.99),
    ([1.0, 1.0, 1.0, 1.0], 0.5, 0.9),
    ([0.1, 0.0, -1.0, 0.1], 2.0, 0.5),
    ([0.0] * 29 + [-1.0], 0.0, 0.99),
    ([0.3], -0.7, 0.95),
]


def _forward_discount(rewards: list[float], gamma: float) -> np.ndarray:
    """A common mistake, for its diagnosis: R_t = r_t + gamma R_{t-1}, discounting forward in time."""
    out, running = [], 0.0
    for reward in rewards:
        running = reward + gamma * running
        out.append(running)
    return np.array(out)


def _returns_cases(fn: Callable[[list[float], float, float], Any]) -> None:
    for rewards, bootstrap, gamma in _ROLLOUTS:
        got = _as_float_array(_call(fn, list(rewards), bootstrap, gamma), "the returns").reshape(-1)
        want = loss.n_step_returns(rewards, bootstrap, gamma).double().numpy()
        case = f"rewards={rewards if len(rewards) < 6 else '[0, ..., 0, -1] (30 steps)'}, bootstrap={bootstrap}, gamma={gamma}"
        if got.shape != want.shape:
            raise _Wrong(f"for {len(rewards)} rewards return {len(rewards)} returns, got {got.size} ({case})")
        if np.allclose(got, want, atol=1e-5):
            continue
        if np.allclose(got, loss.n_step_returns(rewards, 0.0, gamma).double().numpy(), atol=1e-5):
            raise _Wrong(f"the bootstrap value is missing ({case}): the recursion starts from R_T = V(s_T)")
        if np.allclose(got, _forward_discount(rewards, gamma), atol=1e-5):
            raise _Wrong(f"you discounted forward in time ({case}); a return looks ahead: start at the last step, "
                         "R_t = r_t + gamma * R_(t+1), and walk back to t = 0")
        t = int(np.argmax(~np.isclose(got, want, atol=1e-5)))
        raise _Wrong(f"for {case}, R_{t} should be {want[t]:.4f}, you gave {got[t]:.4f}")


def n_step_returns(student_fn: Callable[[list[float], float, float], Any]) -> CheckResult:
    """Exercise 04.1: ``student_fn(rewards, bootstrap_value, gamma)`` -> the ``(T,)`` n-step returns."""
    return _verdict(student_fn, _returns_cases,
                    "Right: R_t = r_t + gamma R_(t+1), started from the bootstrap value, as loss.n_step_returns does.")


def _loss_inputs(rewards: list[float], bootstrap: float, gamma: float, seed: int) -> dict[str, torch.Tensor]:
    """Values, log-probabilities and entropies with gradients, and the returns, for one hidden rollout."""
    generator = torch.Generator().manual_seed(seed)
    steps = len(rewards)
    return {"values": torch.randn(steps, generator=generator).requires_grad_(),
            "log_probs": (-torch.rand(steps, generator=generator) * 2).requires_grad_(),
            "entropies": torch.rand(steps, generator=generator).requires_grad_(),
            "returns": loss.n_step_returns(rewards, bootstrap, gamma)}


def _value_loss_cases(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    for seed, (rewards, bootstrap, gamma) in enumerate(_ROLLOUTS[:3]):
        x = _loss_inputs(rewards, bootstrap, gamma, seed)
        want = loss.a3c_loss(rewards, x["values"], x["log_probs"], x["entropies"], bootstrap, gamma).value
        got = _scalar_tensor(_call(fn, x["values"], x["returns"]), "the value loss")
        if torch.allclose(got, want, atol=1e-5):
            if got.grad_fn is None:
                raise _Wrong("the number is right but it is cut off from the values (no gradient): keep it a tensor "
                             "expression of values, without .item() or .detach()")
            continue
        error = x["returns"] - x["values"].detach()
        if torch.allclose(got, (error ** 2).mean(), atol=1e-5):
            raise _Wrong("that is the mean over the rollout; A3C sums the squared errors, sum_t (R_t - V(s_t))^2")
        if torch.allclose(got, 0.5 * want, atol=1e-5):
            raise _Wrong("you halved it; the 0.5 is value_coef, which the total loss applies, not the value loss")
        if torch.allclose(got, error.abs().sum(), atol=1e-5):
            raise _Wrong("square the errors, (R_t - V(s_t))^2, instead of taking their absolute value")
        raise _Wrong(f"for rewards={rewards} the value loss is {want.item():.4f}, you gave {got.item():.4f}: sum_t (R_t - V(s_t))^2")


def value_loss(student_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Exercise 04.2: ``student_fn(values, returns)`` -> the value loss, a scalar tensor."""
    return _verdict(student_fn, _value_loss_cases,
                    "Right: sum over the rollout of (R_t - V(s_t))^2, with the gradient flowing into the values.")


def _policy_loss_cases(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    for seed, (rewards, bootstrap, gamma) in enumerate(_ROLLOUTS[:3]):
        x = _loss_inputs(rewards, bootstrap, gamma, seed)
        want = loss.a3c_loss(rewards, x["values"], x["log_probs"], x["entropies"], bootstrap, gamma).policy
        got = _scalar_tensor(_call(fn, x["log_probs"], x["values"], x["returns"]), "the policy loss")
        if not torch.allclose(got, want, atol=1e-5):
            advantage = x["returns"] - x["values"].detach()
            if torch.allclose(got, -want, atol=1e-5):
                raise _Wrong("the sign is flipped: minimizing the loss must raise log pi of actions with a positive "
                             "advantage, so policy_loss = -sum_t log pi(a_t|s_t) * A_t")
            if torch.allclose(got, -(x["log_probs"] * x["returns"]).sum(), atol=1e-5):
                raise _Wrong("you weighted log pi by the return R_t; weight it by the advantage A_t = R_t - V(s_t)")
            if torch.allclose(got, -(x["log_probs"] * advantage).mean(), atol=1e-5):
                raise _Wrong("that is the mean over the rollout; A3C sums: -sum_t log pi(a_t|s_t) * A_t")
            raise _Wrong(f"for rewards={rewards} the policy loss is {want.item():.4f}, you gave {got.item():.4f}: "
                         "-sum_t log pi(a_t|s_t) * (R_t - V(s_t))")
        if got.grad_fn is None:
            raise _Wrong("the number is right but it is cut off from log_probs (no gradient): keep it a tensor "
                         "expression, without .item() or .detach() on log_probs")
        got.backward()
        if x["values"].grad is not None and x["values"].grad.abs().sum() > 0:
            raise _Wrong("the number is right, but the gradient flows into the values through the advantage: "
                         "detach it, advantage = (returns - values).detach(); the value loss alone trains V")
        if x["log_probs"].grad is None:
            raise _Wrong("the number is right but no gradient reaches log_probs; keep it a tensor expression of them")


def policy_loss(student_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Exercise 04.3: ``student_fn(log_probs, values, returns)`` -> the policy loss, a scalar tensor."""
    return _verdict(student_fn, _policy_loss_cases,
                    "Right: -sum_t log pi(a_t|s_t) * A_t with the advantage detached, as loss.a3c_loss computes it.")
