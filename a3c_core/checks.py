"""Self-checks for the notebook exercises (notebooks 00-04 and 09).

``checks.crop(my_crop)`` runs the student's function on hidden cases, compares each answer with the package's
own code (``preprocess.crop``, ``loss.n_step_returns``, ...) and gives a :class:`CheckResult`: passed or not, and
one sentence that says what is right or what to look at; a skeleton that still raises ``NotImplementedError``
gets "not done yet", never a crash.

Each exercise is one table, an :class:`Exercise`: the reference (the package's answer), the hidden cases
(``args`` for the student's function and names for the hints), and rules ``(test, hint)`` in order. A test is
either a typical mistake, written as the wrong solution it is (the answer matches it, not the reference), or an
expression over the answer ``got``, the reference's answer ``want`` and the case's names
(``"got.shape != want.shape"``). The first test that holds gives its hint, a ``str.format`` template over the
same names and ``kind``, the answer's type (an expression may return a dict of extra names for its hint).
One method, :meth:`Exercise.diagnose`, reads every table.

The reference solutions live in ``notebooks/solutions/``; ``tests/test_checks.py`` runs every check on them
(they must pass) and on typical wrong answers (they must fail with their hint).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import loss, model, preprocess
from .resources import core_limits

#: A hidden case: ``args`` for the student's function and the names its hints use.
Case = dict[str, Any]


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check: ``passed`` and one sentence for the student."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{'✅' if self.passed else '❌'} {self.message}"


class _Wrong(Exception):
    """An answer of the wrong kind; the message says what it should be."""


@dataclass(frozen=True)
class Exercise:
    """One exercise's table (see the module docstring); calling it checks a student's function.

    ``before`` is a copy of the case's ``args`` made before the student's function runs; ``want`` is
    ``reference(*before)`` (or the case's own ``want``); ``prepare(got)`` turns an answer into something to compare
    (or raises :class:`_Wrong`); numbers are equal within ``atol``.
    """

    name: str
    reference: Callable[..., Any] | None
    cases: Callable[[], Iterable[Case]]
    rules: list[tuple[str | Callable[..., Any], str]]
    success: str
    prepare: Callable[[Any], Any] = lambda got: got
    atol: float = 1e-5

    @property
    def __name__(self) -> str:
        return self.name

    def __call__(self, student_fn: Callable[..., Any]) -> CheckResult:
        """The verdict on ``student_fn``: the first case's complaint, or success."""
        if not callable(student_fn):
            return CheckResult(False, f"Pass the function itself (without calling it), e.g. checks.crop(my_crop); "
                                      f"got a {type(student_fn).__name__}.")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the hidden cases are tiny; extra threads only slow them on a busy machine
        try:
            complaint = next(filter(None, (self.diagnose(student_fn, case) for case in self.cases())), None)
        finally:
            torch.set_num_threads(threads)
        return CheckResult(complaint is None, complaint or self.success)

    def diagnose(self, student_fn: Callable[..., Any], case: Case) -> str | None:
        """What is wrong with ``student_fn`` on ``case`` (one sentence), or None."""
        name = getattr(student_fn, "__name__", "your function")
        before = copy.deepcopy(case["args"])
        try:
            got = student_fn(*case["args"])
        except NotImplementedError:
            return (f"Not done yet: `{name}` still raises NotImplementedError; replace that line with your code and "
                    "run both cells again.")
        except Exception as error:  # any error of the student's code is reported, not raised
            return f"Not quite: `{name}` raised {type(error).__name__}: {error}"
        try:
            got = self.prepare(got)
            names = {**globals(), "got": got, "kind": type(got).__name__, "before": before, "close": self.close}
            if self.reference:  # its arguments by name, and its answer
                names |= {**inspect.signature(self.reference).bind(*before).arguments, "want": self.reference(*before)}
            names |= case
            for test, hint in self.rules:
                found = (eval(test, names) if isinstance(test, str)  # the tables' own expressions, never input
                         else self.close(got, test(*before)) and not self.close(got, names["want"]))
                if found:
                    return "Not quite: " + hint.format(**names, **(found if isinstance(found, dict) else {}))
        except _Wrong as wrong:
            return f"Not quite: {wrong}"
        except Exception as error:  # what the function returned could not even be compared
            return (f"Not quite: what `{name}` returned could not be compared with the expected answer "
                    f"({type(error).__name__}: {error}); check the type and shape it returns.")
        return None

    def close(self, a: Any, b: Any) -> bool:
        """Whether two numbers, arrays or tensors are equal within ``atol`` (False if they cannot be compared)."""
        try:
            return bool(np.allclose(_numbers(a), _numbers(b), atol=self.atol))
        except (TypeError, ValueError):
            return False


def _numbers(value: Any) -> np.ndarray:
    """Numbers, arrays or tensors as a float64 numpy array, to compare."""
    return value.detach().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float64)


def _float_array(value: Any, what: str) -> np.ndarray:
    """A list, numpy array or tensor as a flat float64 numpy array."""
    try:
        return _numbers(value).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as error:
        raise _Wrong(f"{what} should be numbers (a list, numpy array or tensor), got {type(value).__name__}") from error


def _scalar_tensor(value: Any, what: str) -> torch.Tensor:
    """Insist on a 0-d (or one-element) tensor that can be backpropagated through."""
    if not isinstance(value, torch.Tensor):
        raise _Wrong(f"{what} should be a torch tensor (so that .backward() can follow it), got {type(value).__name__}")
    if value.numel() != 1:
        raise _Wrong(f"{what} should be one number (sum over the rollout), got a tensor of shape {tuple(value.shape)}")
    return value.reshape(()).to(torch.float32)


def _first_parameter(test: Callable[[nn.Parameter, nn.Parameter], bool], one: nn.Module, other: nn.Module) -> Any:
    """``{"name": ...}`` of the first parameter ``p`` of ``one`` for which ``test(p, q)`` holds, ``q`` the same
    parameter of ``other``; False if none."""
    return next(({"name": name} for (name, p), q in zip(one.named_parameters(), other.parameters()) if test(p, q)),
                False)


def _first_difference(got: np.ndarray, want: np.ndarray) -> dict[str, Any] | bool:
    """The first step ``t`` where ``got`` differs from ``want``, with both values; False where none does."""
    want = _numbers(want)
    wrong = ~np.isclose(got, want, atol=1e-5)
    t = int(np.argmax(wrong))
    return bool(wrong.any()) and {"t": t, "want_t": want[t], "got_t": got[t]}


def _backward_reaches(loss_value: torch.Tensor, tensor: torch.Tensor) -> bool:
    """Backpropagate ``loss_value`` (filling every gradient the later rules read): does it reach ``tensor``?"""
    loss_value.backward()
    return tensor.grad is not None and bool(tensor.grad.abs().sum() > 0)


_NOT_NUMBER = "not isinstance(got, (int, float, np.integer, np.floating)) or isinstance(got, bool)"


# --- Notebook 00: is everything installed? ------------------------------------------------------
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
    new_enough, cores = sys.version_info >= (3, 10), core_limits()
    results = [CheckResult(new_enough, f"Python {'.'.join(map(str, sys.version_info[:3]))}" + (
        "." if new_enough else f"; the lessons need 3.10 or newer: {INSTALL_ADVICE}."))]
    for package in ("torch", "gymnasium", "ale_py", "numpy", "cv2", "matplotlib", "ipywidgets"):
        try:
            module = importlib.import_module(package)
        except ImportError as error:
            results.append(CheckResult(False, f"{package} is missing ({error}): {INSTALL_ADVICE}."))
        else:
            results.append(CheckResult(True, f"{package} {getattr(module, '__version__', '(version unknown)')}."))
    spawn = "spawn" in multiprocessing.get_all_start_methods()
    return results + [rom_present("pong"), rom_present("space_invaders"), CheckResult(
        True, f"CPU cores this kernel may use: {cores.describe()}" + (
        "; training runs one worker per core." if cores.usable >= 2 else
        "; training runs one worker beside the evaluator: it works, more slowly than on two cores.")),
        CheckResult(spawn, "The 'spawn' start method is available." if spawn else
                    "The 'spawn' start method is missing, which the trainer needs: use CPython 3.10+.")]



# --- Notebook 01: observations -------------------------------------------------------------------
def _hidden_frames() -> list[np.ndarray]:
    """Two random ``(210, 160, 3)`` frames, the first with its row number in channel 0 and its column in channel 1."""
    frames = np.random.default_rng(1).integers(0, 256, (2, 210, 160, 3), dtype=np.uint8)
    frames[0, ..., 0], frames[0, ..., 1] = np.indices((210, 160))
    return list(frames)


#: Exercise 01.1: ``student_fn(frame)`` keeps rows 35..194 of a ``(210, 160, 3)`` frame -> ``(160, 160, 3)``.
crop = Exercise(
    "crop", preprocess.crop, lambda: ({"args": (frame,), "marked": i == 0} for i, frame in enumerate(_hidden_frames())),
    [("not isinstance(got, np.ndarray)", "return a numpy array (a slice of the frame), got {kind}"),
     ("not np.array_equal(args[0], before[0])",
      "your function changed the frame it was given; a crop only selects rows, it writes nothing"),
     ("got.shape == before[0].shape",
      "you returned the whole (210, 160, 3) frame; keep only rows 35..194: frame[35:195]"),
     ("got.ndim == 3 and got.shape[0] == 210",
      "the result has shape {got.shape}: you cut columns (axis 1); rows are axis 0, frame[top:bottom]"),
     ("got.shape != want.shape",
      "for a (210, 160, 3) frame you returned shape {got.shape}; keeping rows 35..194 gives {want.shape}"),
     ("got.dtype != want.dtype", "the crop changed the dtype to {got.dtype}; keep uint8, a crop only selects rows"),
     ("not np.array_equal(got, want) and {'where': f' (your first row is row {got[0, 0, 0]})' if marked else ''}",
      "the shape is right but the rows are not{where}: the state starts at row 35 (the first row below "
      "the score) and stops before row 195 (the bottom border)")],
    "Right: rows 35..194 of every column, 160x160, still uint8, the same rows as preprocess.crop.")

#: Exercise 01.2: ``student_fn(image)`` maps uint8 0..255 to float32 0..1, same shape.
normalize = Exercise(
    "normalize", preprocess.normalize,
    lambda: ({"args": (image,)} for image in (np.array([[[0], [255]], [[128], [1]]], dtype=np.uint8),
                                              np.random.default_rng(3).integers(0, 256, (160, 160, 3), np.uint8))),
    [("not isinstance(got, np.ndarray)", "return a numpy array, got {kind}"),
     ("not np.array_equal(args[0], before[0])",
      "your function changed its input in place; return a new float32 array instead"),
     ("got.shape != want.shape",
      "an image of shape {want.shape} came back with shape {got.shape}; normalizing keeps the shape"),
     ("got.dtype != np.float32 and {'why': ' (integer division // rounds everything to 0 or 1)' "
      "if np.issubdtype(got.dtype, np.integer) else ''}",
      "the result has dtype {got.dtype}{why}; the model works in float32: image.astype(np.float32) / 255"),
     ("got.max() > 1 + 1e-6 and {'top': float(got.max())}",
      "values reach {top:g}; divide by 255 so that 0..255 becomes 0..1"),
     ("abs(float(got[before[0] == 255].min(initial=1.0)) - 1.0) > 1e-6",
      "a white pixel (255) should become exactly 1.0: divide by 255, not 256"),
     ("not close(got, want)", "some values differ from pixel / 255; each pixel p should become p / 255")],
    "Right: float32 in 0..1, 255 becomes 1.0, same shape, input untouched.", atol=1e-6)

#: Exercise 01.3: ``student_fn(frame, height, width)`` -> the ``(3, height, width)`` float32 state.
state = Exercise(
    "state", preprocess.preprocess,
    lambda: ({"args": (_hidden_frames()[0], height, width)} for height, width in ((160, 160), (80, 80), (42, 64))),
    [("not isinstance(got, np.ndarray)", "return a numpy array, got {kind}"),
     ("got.shape == (height, width, 3)",
      "for {height}x{width} you returned {got.shape}, channels last; nn.Conv2d wants channels first {want.shape}: "
      "preprocess.to_channels_first"),
     ("got.shape != want.shape",
      "for height={height}, width={width} the state should have shape {want.shape} (C, H, W), got {got.shape}"),
     ("got.dtype != np.float32",
      "the state has dtype {got.dtype}; the model works in float32 (normalize before resizing)"),
     ("got.max() > 1 + 1e-6 and {'top': float(got.max())}",
      "values reach {top:g}; the state lives in 0..1 (normalize)"),
     # (atol 1/255: resizing before normalizing differs by at most rounding to whole steps of 1/255)
     ("not close(got, want)", "for {height}x{width} the shape is right but the pixels differ from "
                              "preprocess.preprocess: crop rows 35..194 first, then normalize, resize with "
                              "preprocess.resize (area interpolation), and turn channels first")],
    "Right: crop, 0..1, resized, channels first: the very state the model sees.", atol=1 / 255 + 1e-6)


# --- Notebook 02: the conv-GRU model -------------------------------------------------------------
#: Exercise 02.1: ``student_fn(size)`` is the side length after the five 3x3 stride-2 convolutions.
conv_output_size = Exercise(
    "conv_output_size", model.conv_output_size,
    lambda: ({"args": (size,)} for size in (160, 80, 84, 42, 210, 33, 17)),
    [("not isinstance(got, (int, np.integer)) or isinstance(got, bool)",
      "return a whole number of pixels (int), got {kind} {got!r}"),
     (lambda size: size // 2 ** 5, "for {size} pixels you gave {got}, expected {want}: with padding 1 a 3x3 "
                                   "stride-2 conv rounds up, floor((n + 2 - 3) / 2) + 1 = ceil(n / 2)"),
     (lambda size: (size + 1) // 2, "for {size} pixels you gave {got}: that is after one convolution; the model "
                                    "has five"),
     ("not close(got, want)",
      "for an input side of {size} pixels you gave {got}; after five convolutions it is {want}")],
    "Right: each convolution takes n to ceil(n/2), five times: 160 -> 5, 84 -> 3.")

#: Exercise 02.2: ``student_fn(in_channels, out_channels, kernel)`` counts a Conv2d's parameters.
conv_params = Exercise(
    "conv_params", lambda in_ch, out_ch, kernel: sum(p.numel() for p in nn.Conv2d(in_ch, out_ch, kernel).parameters()),
    lambda: ({"args": args} for args in ((3, 8, 3), (12, 16, 3), (32, 32, 3), (1, 4, 5))),
    [(lambda i, o, k: i * o * k * k, "for Conv2d({in_ch}, {out_ch}, {kernel}) you counted only the weights ({got}); "
                                     "each output channel also has a bias: {want}"),
     ("got != want", "Conv2d({in_ch}, {out_ch}, kernel_size={kernel}) has {want} parameters, you counted {got!r}: "
                     "every output channel has one kernel per input channel plus one bias")],
    "Right: out x in x k x k weights plus out biases, as nn.Conv2d counts them.")


def _values_along(net: model.ActorCritic, states: torch.Tensor) -> torch.Tensor:
    """Values ``(T,)`` of ``states`` ``(T, C, H, W)`` played one after another, the hidden state carried."""
    hidden, values = net.initial_state(), []
    for state in states:
        step = net.act(state.unsqueeze(0), hidden, greedy=True)
        values.append(step.value[0])
        hidden = step.hidden
    return torch.stack(values)


def _sequence_case() -> Case:
    """A small model and a sequence of 6 random ``(3, 32, 32)`` states."""
    torch.manual_seed(4)
    net = model.ActorCritic(3, 4, height=32, width=32, hidden_size=16)
    return {"args": (net, torch.rand(6, 3, 32, 32)), "T": 6}


#: Exercise 02.3: ``student_fn(model, states)`` runs ``(T, C, H, W)`` states in order -> ``(T,)`` values.
run_sequence = Exercise(
    "run_sequence", _values_along, lambda: [_sequence_case()],
    [("got.size != T", "for {T} states return {T} values (one per step), got {got.size}"),
     (lambda net, states: net.act(states, net.initial_state(len(states)), greedy=True).value,
      "only the first value is right: every step started again from a zero hidden state; pass the hidden state "
      "each step returns into the next step"),
     ("not close(got, want)", "the values differ from running the states one at a time from model.initial_state(), "
                              "feeding each step's new hidden state into the next")],
    "Right: one state at a time, the hidden state carried from step to step, as a worker plays.",
    prepare=lambda got: _float_array(got, "the values"))


# --- Notebook 03: shared memory and processes ----------------------------------------------------
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


#: The shared weights are no longer those of ``before[1]``, the copy made before the student's function ran.
_SHARED_WEIGHTS_CHANGED = "_first_parameter(lambda p, old: not torch.equal(p, old), shared, before[1])"

#: Exercise 03.1: ``student_fn(local, shared)`` hands the local gradients to the shared parameters.
copy_gradients = Exercise(
    "copy_gradients", None, lambda: (_twin_case(5, stale) for stale in (False, True)),
    [(_SHARED_WEIGHTS_CHANGED, "the shared weights changed; only the gradients should be handed over, the optimizer "
                               "changes the weights afterwards"),
     ("_first_parameter(lambda p, mine: p.grad is None, shared, local)",
      "the shared parameter {name} still has no .grad: set shared_param.grad = local_param.grad"),
     ("_first_parameter(lambda p, mine: not torch.allclose(p.grad, mine.grad), shared, local)",
      "the shared parameter {name} got a gradient different from the local one{how}; it should be exactly "
      "local_param.grad")],
    "Right: the shared parameters now carry the local gradients and their weights are untouched, ready for "
    "SharedAdam.step().")

#: Exercise 03.2: ``student_fn(local, shared)`` copies the shared weights into the private local model.
sync_local = Exercise(
    "sync_local", None, lambda: [_twin_case(6)],
    [(_SHARED_WEIGHTS_CHANGED, "the shared model changed: the copy goes from the shared model to the local one, "
                               "local.load_state_dict(shared.state_dict())"),
     ("_first_parameter(lambda p, mine: not torch.equal(mine, p), shared, local)",
      "the local {name} still differs from the shared one: load the shared weights into the local model"),
     ("_first_parameter(lambda p, mine: mine.data_ptr() == p.data_ptr(), shared, local)",
      "the local model now uses the shared model's memory; it must stay a private copy (values copied, as "
      "load_state_dict does), or its own updates would write the shared weights")],
    "Right: the local model holds the newest shared weights in its own private memory.")


# --- Notebook 04: the loss -----------------------------------------------------------------------
#: Hidden rollouts for the loss exercises: (rewards, bootstrap value, gamma).
_ROLLOUTS: list[tuple[list[float], float, float]] = [
    ([0.0, 0.0, 1.0], 0.0, 0.99),
    ([1.0, 1.0, 1.0, 1.0], 0.5, 0.9),
    ([0.1, 0.0, -1.0, 0.1], 2.0, 0.5),
    ([0.0] * 29 + [-1.0], 0.0, 0.99),
    ([0.3], -0.7, 0.95),
]

#: Exercise 04.1: ``student_fn(rewards, bootstrap_value, gamma)`` -> the ``(T,)`` n-step returns.
n_step_returns = Exercise(
    "n_step_returns", loss.n_step_returns,
    lambda: ({"args": (list(rewards), bootstrap, gamma), "T": len(rewards), "where": "rewards={}, bootstrap={}, "
              "gamma={}".format(rewards if len(rewards) < 6 else "[0, ..., 0, -1] (30 steps)", bootstrap, gamma)}
             for rewards, bootstrap, gamma in _ROLLOUTS),
    [("got.size != T", "for {T} rewards return {T} returns, got {got.size} ({where})"),
     (lambda rewards, bootstrap, gamma: loss.n_step_returns(rewards, 0.0, gamma),
      "the bootstrap value is missing ({where}): the recursion starts from R_T = V(s_T)"),
     # R_t = r_t + gamma R_(t-1), discounting forward in time: the returns of the rollout played backwards
     (lambda rewards, bootstrap, gamma: loss.n_step_returns(rewards[::-1], 0.0, gamma).flip(0),
      "you discounted forward in time ({where}); a return looks ahead: start at the last step, "
      "R_t = r_t + gamma * R_(t+1), and walk back to t = 0"),
     ("_first_difference(got, want)", "for {where}, R_{t} should be {want_t:.4f}, you gave {got_t:.4f}")],
    "Right: R_t = r_t + gamma R_(t+1), started from the bootstrap value, as loss.n_step_returns does.",
    prepare=lambda got: _float_array(got, "the returns"))


def _loss_cases(term: str) -> Callable[[], Iterator[Case]]:
    """The first three hidden rollouts with random values and log-probabilities (with gradients), as the arguments
    of the ``term`` exercise (``"value"`` or ``"policy"``), with that term of ``loss.a3c_loss``."""
    def cases() -> Iterator[Case]:
        for seed, (rewards, bootstrap, gamma) in enumerate(_ROLLOUTS[:3]):
            generator = torch.Generator().manual_seed(seed)
            values = torch.randn(len(rewards), generator=generator).requires_grad_()
            log_probs = (-torch.rand(len(rewards), generator=generator) * 2).requires_grad_()
            terms = loss.a3c_loss(rewards, values, log_probs, torch.zeros(len(rewards)), bootstrap, gamma)
            returns = loss.n_step_returns(rewards, bootstrap, gamma)
            yield {"args": (values, returns) if term == "value" else (log_probs, values, returns), "rewards": rewards,
                   "values": values, "log_probs": log_probs, "want": getattr(terms, term)}
    return cases


#: Exercise 04.2: ``student_fn(values, returns)`` -> the value loss, a scalar tensor.
value_loss = Exercise(
    "value_loss", None, _loss_cases("value"),
    [(lambda values, returns: ((returns - values) ** 2).mean(),
      "that is the mean over the rollout; A3C sums the squared errors, sum_t (R_t - V(s_t))^2"),
     (lambda values, returns: 0.5 * ((returns - values) ** 2).sum(),
      "you halved it; the 0.5 is value_coef, which the total loss applies, not the value loss"),
     (lambda values, returns: (returns - values).abs().sum(),
      "square the errors, (R_t - V(s_t))^2, instead of taking their absolute value"),
     ("not close(got, want)",
      "for rewards={rewards} the value loss is {want:.4f}, you gave {got:.4f}: sum_t (R_t - V(s_t))^2"),
     ("got.grad_fn is None", "the number is right but it is cut off from the values (no gradient): keep it a tensor "
                             "expression of values, without .item() or .detach()")],
    "Right: sum over the rollout of (R_t - V(s_t))^2, with the gradient flowing into the values.",
    prepare=lambda got: _scalar_tensor(got, "the value loss"))

#: Exercise 04.3: ``student_fn(log_probs, values, returns)`` -> the policy loss, a scalar tensor.
policy_loss = Exercise(
    "policy_loss", None, _loss_cases("policy"),
    [(lambda log_probs, values, returns: (log_probs * (returns - values)).sum(),
      "the sign is flipped: minimizing the loss must raise log pi of actions with a positive advantage, so "
      "policy_loss = -sum_t log pi(a_t|s_t) * A_t"),
     (lambda log_probs, values, returns: -(log_probs * returns).sum(),
      "you weighted log pi by the return R_t; weight it by the advantage A_t = R_t - V(s_t)"),
     (lambda log_probs, values, returns: -(log_probs * (returns - values)).mean(),
      "that is the mean over the rollout; A3C sums: -sum_t log pi(a_t|s_t) * A_t"),
     ("not close(got, want)", "for rewards={rewards} the policy loss is {want:.4f}, you gave {got:.4f}: "
                              "-sum_t log pi(a_t|s_t) * (R_t - V(s_t))"),
     ("got.grad_fn is None", "the number is right but it is cut off from log_probs (no gradient): keep it a tensor "
                             "expression, without .item() or .detach() on log_probs"),
     ("_backward_reaches(got, values)",
      "the number is right, but the gradient flows into the values through the advantage: "
      "detach it, advantage = (returns - values).detach(); the value loss alone trains V"),
     ("log_probs.grad is None", "the number is right but no gradient reaches log_probs; keep it a tensor expression "
                                "of them")],
    "Right: -sum_t log pi(a_t|s_t) * A_t with the advantage detached, as loss.a3c_loss computes it.",
    prepare=lambda got: _scalar_tensor(got, "the policy loss"))


# --- Notebook 09: beyond one machine -------------------------------------------------------------
#: Exercise 09.1: ``student_fn(n_parameters)`` -> the bytes of one update in one direction.
bytes_per_update = Exercise(
    "bytes_per_update", lambda n: 4 * n, lambda: ({"args": (n,)} for n in (445_511, 838_871, 1_000, 7)),
    [(_NOT_NUMBER, "return one number of bytes, got {kind} {got!r}"),
     (lambda n: n, "{got:,} is the number of parameters; each travels as a float32 of 4 bytes"),
     (lambda n: 8 * n, "{got:,} is both ways together (or float64); one way, the gradient or the weights, "
                       "is 4 bytes per parameter"),
     (lambda n: 2 * n, "{got:,} would be float16; the model's parameters and their gradients are float32, 4 bytes"),
     ("not close(got, want)", "for {n:,} parameters one direction carries {want:,} bytes, you gave {got!r}")],
    "Right: 4 bytes per parameter each way: 1.78 MB for the fast preset's 445,511 parameters.", atol=0.5)

#: Exercise 09.2: ``student_fn(server_updates_per_second, worker_steps_per_second, rollout_steps)`` ->
#: how many workers one parameter server can keep up with.
workers_per_server = Exercise(
    "workers_per_server", lambda server, steps, rollout: server * rollout / steps,
    lambda: ({"args": args} for args in ((150.0, 700.0, 30), (400.0, 500.0, 20), (90.0, 1200.0, 5))),
    [(_NOT_NUMBER, "return one number of workers, got {kind} {got!r}"),
     (lambda server, steps, rollout: server / steps,
      "a worker sends one gradient per rollout, not per step: it sends {steps} / {rollout} updates per second"),
     (lambda server, steps, rollout: steps / rollout / server,
      "that is upside down: the server's capacity divided by one worker's updates per second is the number of "
      "workers"),
     ("not close(got, want)", "a server that applies {server} updates/s feeds {want:.1f} workers of {steps} steps/s "
                              "with {rollout}-step rollouts; you gave {got!r}")],
    "Right: the server's updates/s divided by one worker's (its steps/s over rollout_steps).", atol=1e-6)
