"""The machinery of the self-checks: :class:`Exercise` (one exercise's table, called on a student's function),
:class:`CheckResult` (its verdict), :func:`mistake`, and the small tests that the tables' rules share.
"""

from __future__ import annotations

import copy
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import CodeType, SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

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


class Wrong(Exception):
    """An answer of the wrong kind; the message says what it should be."""


def mistake(wrong: Callable[..., Any]) -> Callable[[Answer], bool]:
    """A test that holds where the answer is what the typical wrong solution ``wrong`` gives on the case's
    arguments, and not what the reference gives."""
    return lambda a: a.close(a.got, wrong(*a.before)) and not a.close(a.got, a.want)


@dataclass(frozen=True)
class Exercise:
    """One exercise's table (see :mod:`a3c_core.checks`); calling it checks a student's function.

    ``want`` is ``reference(*before)`` (or the case's own ``want``); ``prepare(got)`` turns an answer into something
    to compare (or raises :class:`Wrong`); numbers are equal within ``atol``. ``answers`` are the package's
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
        except Wrong as wrong:
            return f"Not quite: {wrong}"
        except Exception as error:  # what the function returned could not even be compared
            return (f"Not quite: what `{name}` returned could not be compared with the expected answer "
                    f"({type(error).__name__}: {error}); check the type and shape it returns.")
        return None

    def close(self, a: Any, b: Any) -> bool:
        """Whether two numbers, arrays or tensors are equal within ``atol`` (False if they cannot be compared)."""
        try:
            return bool(np.allclose(as_numbers(a), as_numbers(b), atol=self.atol))
        except (TypeError, ValueError):
            return False


def _package_name(fn: Callable[..., Any], exercise: str) -> str:
    """How a student reaches ``fn``: ``preprocess.crop``, or ``checks.<exercise>.reference`` for the checks' own."""
    if fn.__module__.startswith("a3c_core.checks"):
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


def as_numbers(value: Any) -> np.ndarray:
    """Numbers, arrays or tensors (or a list of tensors) as a float64 numpy array, to compare."""
    if isinstance(value, torch.Tensor):
        return value.detach().double().numpy()
    if isinstance(value, (list, tuple)) and any(isinstance(item, torch.Tensor) for item in value):
        return np.array([as_numbers(item) for item in value], np.float64)
    return np.asarray(value, np.float64)


def float_array(value: Any, what: str) -> np.ndarray:
    """A list, numpy array or tensor as a flat float64 numpy array."""
    try:
        return as_numbers(value).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as error:
        raise Wrong(f"{what} should be numbers (a list, numpy array or tensor), got {type(value).__name__}") from error


def scalar_tensor(value: Any, what: str) -> torch.Tensor:
    """Insist on a 0-d (or one-element) tensor that can be backpropagated through."""
    if not isinstance(value, torch.Tensor):
        raise Wrong(f"{what} should be a torch tensor (so that .backward() can follow it), got {type(value).__name__}")
    if value.numel() != 1:
        raise Wrong(f"{what} should be one number (sum over the rollout), got a tensor of shape {tuple(value.shape)}")
    return value.reshape(()).to(torch.float32)


def first_parameter(test: Callable[[nn.Parameter, nn.Parameter], bool], one: nn.Module,
                     other: nn.Module) -> str | None:
    """The name of the first parameter ``p`` of ``one`` for which ``test(p, q)`` holds, ``q`` the same parameter
    of ``other``; None if none."""
    return next((name for (name, p), q in zip(one.named_parameters(), other.parameters()) if test(p, q)), None)


def first_difference(got: np.ndarray, want: Any) -> dict[str, Any] | None:
    """The first step ``t`` where ``got`` differs from ``want``, with both values; None where none does."""
    want = as_numbers(want)
    wrong = ~np.isclose(got, want, atol=1e-5)
    t = int(np.argmax(wrong))
    return {"t": t, "want_t": want[t], "got_t": got[t]} if wrong.any() else None


def reaches(loss_value: torch.Tensor, tensor: torch.Tensor) -> bool:
    """Whether a gradient of ``loss_value`` flows into ``tensor`` (nonzero somewhere); leaves every ``.grad`` as
    it was."""
    if loss_value.grad_fn is None:
        return False
    (gradient,) = torch.autograd.grad(loss_value, tensor, retain_graph=True, allow_unused=True)
    return gradient is not None and bool(gradient.abs().sum() > 0)


def not_a_number(a: Answer) -> bool:
    """The answer is not one plain number (a bool does not count)."""
    return not isinstance(a.got, (int, float, np.integer, np.floating)) or isinstance(a.got, bool)
