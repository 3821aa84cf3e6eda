"""Self-checks for the notebook exercises (notebooks 00-04 and 09).

``checks.crop(my_crop)`` runs the student's function on hidden cases, compares each answer with the package's
own code (``preprocess.crop``, ``loss.n_step_returns``, ...) and gives a :class:`CheckResult`: passed or not, and
one sentence that says what is right or what to look at; a skeleton that still raises ``NotImplementedError``
gets "not done yet", never a crash, and a function that calls the package's own answer instead of computing it
is told so (it does not pass).

Each exercise is one table, an :class:`Exercise`: the reference (the package's answer), the hidden cases
(``args`` for the student's function and names for the hints), and rules ``(test, hint)`` in order. A test is a
function of the :class:`Answer` (``a.got``, ``a.want``, ``a.before`` and the case's names); :func:`mistake`
makes one from a typical wrong solution (the answer matches it, not the reference). The first test that holds
gives its hint: a ``str.format`` template over the answer's names (``{got}``, ``{kind}``, the case's names, and
``{found}``, what the test returned), or a function of the answer. One method, :meth:`Exercise.diagnose`,
reads every table.

The reference solutions live in ``notebooks/solutions/``; ``tests/test_checks.py`` runs every check on them
(they must pass) and on typical wrong answers (they must fail with their hint).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import CodeType, SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from . import loss, model, preprocess, shared
from .resources import core_limits

#: A hidden case: ``args`` for the student's function and the names its hints use.
Case = dict[str, Any]

#: What a rule sees: ``got`` (the answer, prepared), ``want``, ``kind`` (the answer's type name), ``before`` (a
#: copy of ``args`` made before the student's function ran), the reference's arguments by name, the case's names
#: and ``close(a, b)``.
Answer = SimpleNamespace

#: A rule: a test of the answer (truthy where the hint applies) and its hint (a template, or a function).
Rule = tuple[Callable[[Answer], Any], str | Callable[[Answer], str]]


#: The marks before a verdict: text characters that the usual monospace fonts draw (DejaVu Sans Mono,
#: Menlo, Consolas), not emoji, which show as empty boxes where no emoji font is installed.
PASSED, NOT_YET = "\u2713", "\u2717"  # ✓ and ✗


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check: ``passed`` and one sentence for the student."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{PASSED if self.passed else NOT_YET} {self.message}"


class _Wrong(Exception):
    """An answer of the wrong kind; the message says what it should be."""


def mistake(wrong: Callable[..., Any]) -> Callable[[Answer], bool]:
    """A test that holds where the answer is what the typical wrong solution ``wrong`` gives on the case's
    arguments, and not what the reference gives."""
    return lambda a: a.close(a.got, wrong(*a.before)) and not a.close(a.got, a.want)


@dataclass(frozen=True)
class Exercise:
    """One exercise's table (see the module docstring); calling it checks a student's function.

    ``want`` is ``reference(*before)`` (or the case's own ``want``); ``prepare(got)`` turns an answer into something
    to compare (or raises :class:`_Wrong`); numbers are equal within ``atol``. ``answers`` are the package's
    functions that compute this exercise's answer (``preprocess.crop`` for the crop): a student's function that
    calls one of them, or the reference, does not pass. ``errors`` are ``(test, hint)`` for errors the
    student's function raises: the first whose test holds adds its hint to the error's own words.
    """

    name: str
    reference: Callable[..., Any] | None
    cases: Callable[[], Iterable[Case]]
    rules: list[Rule]
    success: str
    prepare: Callable[[Any], Any] = lambda got: got
    atol: float = 1e-5
    answers: tuple[Callable[..., Any], ...] = field(default=())
    errors: tuple[tuple[Callable[[Exception], bool], str], ...] = field(default=())

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
        forbidden = {fn.__code__: _package_name(fn, self.name) for fn in (*self.answers, self.reference) if fn}
        try:
            got, called = _calling(student_fn, case["args"], forbidden)
        except NotImplementedError:
            return (f"Not done yet: `{name}` still raises NotImplementedError; replace that line with your code and "
                    "run both cells again.")
        except Exception as error:  # any error of the student's code is reported, not raised
            hint = next((hint for test, hint in self.errors if test(error)), None)
            return f"Not quite: `{name}` raised {type(error).__name__}: {error}" + (f"; {hint}" if hint else "")
        if called:
            return (f"Not quite: `{name}` calls {called}, the package's own answer; the exercise is to compute it "
                    "yourself, in your own lines.")
        try:
            got = self.prepare(got)
            names = {"got": got, "kind": type(got).__name__, "before": before, "close": self.close}
            if self.reference:  # its arguments by name, and its answer
                names |= {**inspect.signature(self.reference).bind(*before).arguments, "want": self.reference(*before)}
            answer = Answer(**(names | case))
            for test, hint in self.rules:
                found = test(answer)
                if found:
                    answer.found = found
                    return "Not quite: " + (hint.format(**vars(answer)) if isinstance(hint, str) else hint(answer))
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


def _package_name(fn: Callable[..., Any], exercise: str) -> str:
    """How a student reaches ``fn``: ``preprocess.crop``, or ``checks.<exercise>.reference`` for this module's own."""
    if fn.__module__ == __name__:
        return f"checks.{exercise}.reference"
    return f"{fn.__module__.removeprefix('a3c_core.')}.{fn.__qualname__}"


def _calling(fn: Callable[..., Any], args: tuple, forbidden: dict[CodeType, str]) -> tuple[Any, str | None]:
    """``fn(*args)``, and the name of the first function of ``forbidden`` (by code object) it called, or None.

    A profile hook sees every Python call made while ``fn`` runs, however the function was reached
    (``preprocess.crop``, an alias, a wrapper of the student's own); the hook in place before is restored."""
    called: list[str] = []

    def watch(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in forbidden and not called:
            called.append(forbidden[frame.f_code])

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        got = fn(*args)
    finally:
        sys.setprofile(previous)
    return got, (called[0] if called else None)


def _numbers(value: Any) -> np.ndarray:
    """Numbers, arrays or tensors (or a list of tensors) as a float64 numpy array, to compare."""
    if isinstance(value, torch.Tensor):
        return value.detach().double().numpy()
    if isinstance(value, (list, tuple)) and any(isinstance(item, torch.Tensor) for item in value):
        return np.array([_numbers(item) for item in value], np.float64)
    return np.asarray(value, np.float64)


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


def _first_parameter(test: Callable[[nn.Parameter, nn.Parameter], bool], one: nn.Module,
                     other: nn.Module) -> str | None:
    """The name of the first parameter ``p`` of ``one`` for which ``test(p, q)`` holds, ``q`` the same parameter
    of ``other``; None if none."""
    return next((name for (name, p), q in zip(one.named_parameters(), other.parameters()) if test(p, q)), None)


def _first_difference(got: np.ndarray, want: Any) -> dict[str, Any] | None:
    """The first step ``t`` where ``got`` differs from ``want``, with both values; None where none does."""
    want = _numbers(want)
    wrong = ~np.isclose(got, want, atol=1e-5)
    t = int(np.argmax(wrong))
    return {"t": t, "want_t": want[t], "got_t": got[t]} if wrong.any() else None


def _reaches(loss_value: torch.Tensor, tensor: torch.Tensor) -> bool:
    """Whether a gradient of ``loss_value`` flows into ``tensor`` (nonzero somewhere); leaves every ``.grad`` as
    it was."""
    if loss_value.grad_fn is None:
        return False
    (gradient,) = torch.autograd.grad(loss_value, tensor, retain_graph=True, allow_unused=True)
    return gradient is not None and bool(gradient.abs().sum() > 0)


def _not_number(a: Answer) -> bool:
    """The answer is not one plain number (a bool does not count)."""
    return not isinstance(a.got, (int, float, np.integer, np.floating)) or isinstance(a.got, bool)


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
    [(lambda a: not isinstance(a.got, np.ndarray), "return a numpy array (a slice of the frame), got {kind}"),
     (lambda a: not np.array_equal(a.args[0], a.before[0]),
      "your function changed the frame it was given; a crop only selects rows, it writes nothing"),
     (lambda a: a.got.shape == a.before[0].shape,
      "you returned the whole (210, 160, 3) frame; keep only rows 35..194: frame[35:195]"),
     (lambda a: a.got.ndim == 3 and a.got.shape[0] == 210,
      "the result has shape {got.shape}: you cut columns (axis 1); rows are axis 0, frame[top:bottom]"),
     (lambda a: a.got.shape != a.want.shape,
      "for a (210, 160, 3) frame you returned shape {got.shape}; keeping rows 35..194 gives {want.shape}"),
     (lambda a: a.got.dtype != a.want.dtype,
      "the crop changed the dtype to {got.dtype}; keep uint8, a crop only selects rows"),
     (lambda a: not np.array_equal(a.got, a.want),
      lambda a: "the shape is right but the rows are not" + (f" (your first row is row {a.got[0, 0, 0]})" if a.marked
      else "") + ": the state starts at row 35 (the first row below the score) and stops before row 195 (the bottom "
      "border)")],
    "Right: rows 35..194 of every column, 160x160, still uint8, the same rows as preprocess.crop.")

#: Exercise 01.2: ``student_fn(image)`` maps uint8 0..255 to float32 0..1, same shape.
normalize = Exercise(
    "normalize", preprocess.normalize,
    lambda: ({"args": (image,)} for image in (np.array([[[0], [255]], [[128], [1]]], dtype=np.uint8),
                                              np.random.default_rng(3).integers(0, 256, (160, 160, 3), np.uint8))),
    [(lambda a: not isinstance(a.got, np.ndarray), "return a numpy array, got {kind}"),
     (lambda a: not np.array_equal(a.args[0], a.before[0]),
      "your function changed its input in place; return a new float32 array instead"),
     (lambda a: a.got.shape != a.want.shape,
      "an image of shape {want.shape} came back with shape {got.shape}; normalizing keeps the shape"),
     (lambda a: a.got.dtype != np.float32,
      lambda a: f"the result has dtype {a.got.dtype}" + (" (integer division // rounds everything to 0 or 1)"
      if np.issubdtype(a.got.dtype, np.integer) else "") + "; the model works in float32: "
      "image.astype(np.float32) / 255"),
     (lambda a: a.got.max() > 1 + 1e-6, lambda a: f"values reach {float(a.got.max()):g}; divide by 255 so that "
                                                  "0..255 becomes 0..1"),
     (lambda a: abs(float(a.got[a.before[0] == 255].min(initial=1.0)) - 1.0) > 1e-6,
      "a white pixel (255) should become exactly 1.0: divide by 255, not 256"),
     (lambda a: not a.close(a.got, a.want), "some values differ from pixel / 255; each pixel p should become p / 255")],
    "Right: float32 in 0..1, 255 becomes 1.0, same shape, input untouched.", atol=1e-6)

#: Exercise 01.3: ``student_fn(frame, height, width)`` -> the ``(3, height, width)`` float32 state.
state = Exercise(
    "state", preprocess.preprocess,
    lambda: ({"args": (_hidden_frames()[0], height, width)} for height, width in ((160, 160), (80, 80), (42, 64))),
    [(lambda a: not isinstance(a.got, np.ndarray), "return a numpy array, got {kind}"),
     (lambda a: a.got.shape == (a.height, a.width, 3),
      "for {height}x{width} you returned {got.shape}, channels last; nn.Conv2d wants channels first {want.shape}: "
      "preprocess.to_channels_first"),
     (lambda a: a.got.shape != a.want.shape,
      "for height={height}, width={width} the state should have shape {want.shape} (C, H, W), got {got.shape}"),
     (lambda a: a.got.dtype != np.float32,
      "the state has dtype {got.dtype}; the model works in float32 (normalize before resizing)"),
     (lambda a: a.got.max() > 1 + 1e-6,
      lambda a: f"values reach {float(a.got.max()):g}; the state lives in 0..1 (normalize)"),
     # (atol 1/255: resizing before normalizing differs by at most rounding to whole steps of 1/255)
     (lambda a: not a.close(a.got, a.want), "for {height}x{width} the shape is right but the pixels differ from "
                              "preprocess.preprocess: crop rows 35..194 first, then normalize, resize with "
                              "preprocess.resize (area interpolation), and turn channels first")],
    "Right: crop, 0..1, resized, channels first: the very state the model sees.", atol=1 / 255 + 1e-6)


# --- Notebook 02: the conv-GRU model -------------------------------------------------------------
def _without_padding(size: int) -> int:
    """The side after five 3x3 stride-2 convolutions *without* padding: a typical mistake."""
    for _ in range(5):
        size = (size - 3) // 2 + 1
    return size


#: Exercise 02.1: ``student_fn(size)`` is the side length after the five 3x3 stride-2 convolutions.
conv_output_size = Exercise(
    "conv_output_size", model.conv_output_size,
    lambda: ({"args": (size,)} for size in (160, 80, 84, 42, 210, 33, 17)),
    [(lambda a: not isinstance(a.got, (int, np.integer)) or isinstance(a.got, bool),
      "return a whole number of pixels (int), got {kind} {got!r}"),
     (mistake(lambda size: size // 2 ** 5), "for {size} pixels you gave {got}, expected {want}: with padding 1 a 3x3 "
                                   "stride-2 conv rounds up, floor((n + 2 - 3) / 2) + 1 = ceil(n / 2)"),
     (mistake(_without_padding), "for {size} pixels you gave {got}, expected {want}: that is without padding; the "
                                 "model's convolutions pad by 1, so each takes n to floor((n + 2 - 3) / 2) + 1"),
     (mistake(lambda size: (size + 1) // 2), "for {size} pixels you gave {got}: that is after one convolution; the model "
                                    "has five"),
     (lambda a: not a.close(a.got, a.want),
      "for an input side of {size} pixels you gave {got}; after five convolutions it is {want}")],
    "Right: each convolution takes n to ceil(n/2), five times: 160 -> 5, 84 -> 3.")

#: Exercise 02.2: ``student_fn(in_channels, out_channels, kernel)`` counts a Conv2d's parameters.
conv_params = Exercise(
    "conv_params", lambda in_ch, out_ch, kernel: sum(p.numel() for p in nn.Conv2d(in_ch, out_ch, kernel).parameters()),
    lambda: ({"args": args} for args in ((3, 8, 3), (12, 16, 3), (32, 32, 3), (1, 4, 5))),
    [(mistake(lambda i, o, k: i * o * k * k), "for Conv2d({in_ch}, {out_ch}, {kernel}) you counted only the weights ({got}); "
                                     "each output channel also has a bias: {want}"),
     (lambda a: a.got != a.want, "Conv2d({in_ch}, {out_ch}, kernel_size={kernel}) has {want} parameters, you counted {got!r}: "
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
    [(lambda a: a.got.size != a.T, "for {T} states return {T} values (one per step), got {got.size}"),
     (mistake(lambda net, states: net.act(states, net.initial_state(len(states)), greedy=True).value),
      "only the first value is right: every step started again from a zero hidden state; pass the hidden state "
      "each step returns into the next step"),
     (lambda a: not a.close(a.got, a.want), "the values differ from running the states one at a time from model.initial_state(), "
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


def _shared_weights_changed(a: Answer) -> str | None:
    """The first shared parameter no longer equal to its copy in ``before``, made before the student's function
    ran."""
    return _first_parameter(lambda p, old: not torch.equal(p, old), a.shared, a.before[1])


#: Exercise 03.1: ``student_fn(local, shared)`` hands the local gradients to the shared parameters.
copy_gradients = Exercise(
    "copy_gradients", None, lambda: (_twin_case(5, stale) for stale in (False, True)),
    [(_shared_weights_changed, "the shared weights changed; only the gradients should be handed over, the optimizer "
                               "changes the weights afterwards"),
     (lambda a: _first_parameter(lambda p, mine: p.grad is None, a.shared, a.local),
      "the shared parameter {found} still has no .grad: set shared_param.grad = local_param.grad"),
     (lambda a: _first_parameter(lambda p, mine: not torch.allclose(p.grad, mine.grad), a.shared, a.local),
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
     (lambda a: _first_parameter(lambda p, mine: not torch.equal(mine, p), a.shared, a.local),
      "the local {found} still differs from the shared one: load the shared weights into the local model"),
     (lambda a: _first_parameter(lambda p, mine: mine.data_ptr() == p.data_ptr(), a.shared, a.local),
      "the local model now uses the shared model's memory; it must stay a private copy (values copied, as "
      "load_state_dict does), or its own updates would write the shared weights")],
    "Right: the local model holds the newest shared weights in its own private memory.",
    answers=(shared.SharedMemoryLink.pull,))


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
    [(lambda a: a.got.size != a.T, "for {T} rewards return {T} returns, got {got.size} ({where})"),
     (mistake(lambda rewards, bootstrap, gamma: loss.n_step_returns(rewards, 0.0, gamma)),
      "the bootstrap value is missing ({where}): the recursion starts from R_T = V(s_T)"),
     # R_t = r_t + gamma R_(t-1), discounting forward in time: the returns of the rollout played backwards
     (mistake(lambda rewards, bootstrap, gamma: loss.n_step_returns(rewards[::-1], 0.0, gamma).flip(0)),
      "you discounted forward in time ({where}); a return looks ahead: start at the last step, "
      "R_t = r_t + gamma * R_(t+1), and walk back to t = 0"),
     (lambda a: _first_difference(a.got, a.want),
      "for {where}, R_{found[t]} should be {found[want_t]:.4f}, you gave {found[got_t]:.4f}")],
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
    [(mistake(lambda values, returns: ((returns - values) ** 2).mean()),
      "that is the mean over the rollout; A3C sums the squared errors, sum_t (R_t - V(s_t))^2"),
     (mistake(lambda values, returns: 0.5 * ((returns - values) ** 2).sum()),
      "you halved it; the 0.5 is value_coef, which the total loss applies, not the value loss"),
     (mistake(lambda values, returns: (returns - values).abs().sum()),
      "square the errors, (R_t - V(s_t))^2, instead of taking their absolute value"),
     (lambda a: not a.close(a.got, a.want),
      "for rewards={rewards} the value loss is {want:.4f}, you gave {got:.4f}: sum_t (R_t - V(s_t))^2"),
     (lambda a: not _reaches(a.got, a.values), "the number is right but it is cut off from the values (no gradient): keep it a tensor "
                             "expression of values, without .item() or .detach()")],
    "Right: sum over the rollout of (R_t - V(s_t))^2, with the gradient flowing into the values.",
    prepare=lambda got: _scalar_tensor(got, "the value loss"), answers=(loss.a3c_loss,))

#: Exercise 04.3: ``student_fn(log_probs, values, returns)`` -> the policy loss, a scalar tensor.
policy_loss = Exercise(
    "policy_loss", None, _loss_cases("policy"),
    [(mistake(lambda log_probs, values, returns: (log_probs * (returns - values)).sum()),
      "the sign is flipped: minimizing the loss must raise log pi of actions with a positive advantage, so "
      "policy_loss = -sum_t log pi(a_t|s_t) * A_t"),
     (mistake(lambda log_probs, values, returns: -(log_probs * returns).sum()),
      "you weighted log pi by the return R_t; weight it by the advantage A_t = R_t - V(s_t)"),
     (mistake(lambda log_probs, values, returns: -(log_probs * (returns - values)).mean()),
      "that is the mean over the rollout; A3C sums: -sum_t log pi(a_t|s_t) * A_t"),
     (lambda a: not a.close(a.got, a.want), "for rewards={rewards} the policy loss is {want:.4f}, you gave {got:.4f}: "
                              "-sum_t log pi(a_t|s_t) * (R_t - V(s_t))"),
     (lambda a: a.got.grad_fn is None, "the number is right but it is cut off from log_probs (no gradient): keep it a tensor "
                             "expression, without .item() or .detach() on log_probs"),
     (lambda a: _reaches(a.got, a.values),
      "the number is right, but the gradient flows into the values through the advantage: "
      "detach it, advantage = (returns - values).detach(); the value loss alone trains V"),
     (lambda a: not _reaches(a.got, a.log_probs), "the number is right but no gradient reaches log_probs; keep it a tensor expression "
                                "of them")],
    "Right: -sum_t log pi(a_t|s_t) * A_t with the advantage detached, as loss.a3c_loss computes it.",
    prepare=lambda got: _scalar_tensor(got, "the policy loss"), answers=(loss.a3c_loss,))


# --- Notebook 09: beyond one machine -------------------------------------------------------------
#: Exercise 09.1: ``student_fn(n_parameters)`` -> the bytes of one update in one direction.
bytes_per_update = Exercise(
    "bytes_per_update", lambda n: 4 * n, lambda: ({"args": (n,)} for n in (445_511, 838_871, 1_000, 7)),
    [(_not_number, "return one number of bytes, got {kind} {got!r}"),
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
    [(_not_number, "return one number of workers, got {kind} {got!r}"),
     (mistake(lambda server, steps, rollout: server / steps),
      "a worker sends one gradient per rollout, not per step: it sends {steps} / {rollout} updates per second"),
     (mistake(lambda server, steps, rollout: steps / rollout / server),
      "that is upside down: the server's capacity divided by one worker's updates per second is the number of "
      "workers"),
     (lambda a: not a.close(a.got, a.want) and a.got != math.floor(a.want), "a server that applies {server} updates/s feeds {want:.1f} workers of {steps} steps/s "
                              "with {rollout}-step rollouts; you gave {got!r}")],
    "Right: the server's updates/s divided by one worker's (its steps/s over rollout_steps); whole workers "
    "(rounded down) count too.", atol=1e-6)
