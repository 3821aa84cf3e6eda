"""Every exercise check: the reference solution passes, typical wrong answers fail with a helpful sentence."""

from __future__ import annotations

import importlib.util
import inspect
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import numpy as np
import pytest
import torch

from a3c_core import checks, loss, model, preprocess, shared
from a3c_core.checks import CheckResult

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


def load_solutions(number: str) -> ModuleType:
    """Import ``notebooks/solutions/solutions_<number>.py`` by path."""
    path = SOLUTIONS / f"solutions_{number}.py"
    spec = importlib.util.spec_from_file_location(f"solutions_{number}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


S01, S02, S03, S04, S09 = (load_solutions(n) for n in ("01", "02", "03", "04", "09"))

#: (check, reference solution) for every exercise of notebooks 01-04 and 09.
EXERCISES = [
    (checks.crop, S01.my_crop),
    (checks.normalize, S01.my_normalize),
    (checks.state, S01.my_state),
    (checks.conv_output_size, S02.my_conv_output_size),
    (checks.conv_params, S02.my_conv_params),
    (checks.run_sequence, S02.my_run_sequence),
    (checks.copy_gradients, S03.my_copy_gradients),
    (checks.sync_local, S03.my_sync_local),
    (checks.n_step_returns, S04.my_n_step_returns),
    (checks.value_loss, S04.my_value_loss),
    (checks.policy_loss, S04.my_policy_loss),
    (checks.bytes_per_update, S09.my_bytes_per_update),
    (checks.workers_per_server, S09.my_workers_per_server),
]
IDS = [check.__name__ for check, _ in EXERCISES]


def assert_fails(result: CheckResult, *phrases: str) -> None:
    """The check failed and its one sentence contains every phrase (case-insensitive)."""
    assert isinstance(result, CheckResult)
    assert not result.passed, f"a wrong answer passed: {result.message}"
    assert result.message.startswith("Not quite:"), result.message
    for phrase in phrases:
        assert phrase.lower() in result.message.lower(), f"{phrase!r} missing from: {result.message}"
    assert "\n" not in result.message and len(result.message) < 300, result.message


@pytest.mark.parametrize(("check", "solution"), EXERCISES, ids=IDS)
def test_reference_solution_passes(check, solution) -> None:
    threads = torch.get_num_threads()
    result = check(solution)
    assert result.passed, result.message
    assert torch.get_num_threads() == threads, "a check must leave torch's thread count as it found it"
    assert repr(result).startswith("✓") and bool(result)


@pytest.mark.parametrize(("check", "solution"), EXERCISES, ids=IDS)
def test_skeleton_is_not_done_yet_without_crashing(check, solution) -> None:
    def my_skeleton(*args):
        raise NotImplementedError("your code here")

    result = check(my_skeleton)
    assert not result.passed
    assert result.message.startswith("Not done yet") and "my_skeleton" in result.message
    assert repr(result).startswith("✗")


@pytest.mark.parametrize(("check", "solution"), EXERCISES, ids=IDS)
def test_an_error_in_the_students_code_is_reported(check, solution) -> None:
    def broken(*args):
        return undefined_name  # noqa: F821  (the student's typo)

    assert_fails(check(broken), "broken", "NameError", "undefined_name")


def test_an_answer_that_cannot_be_compared_is_reported_not_raised() -> None:
    class Stubborn:
        def __array__(self, dtype=None, copy=None):
            raise KeyError("I refuse to be compared")

    def my_returns(rewards, bootstrap, gamma):
        return Stubborn()

    result = checks.n_step_returns(my_returns)
    assert not result.passed
    assert "could not be compared" in result.message and "my_returns" in result.message and "I refuse" in result.message


def test_float64_answers_are_compared_as_numbers() -> None:
    assert checks.value_loss(lambda v, r: ((r.double() - v.double()) ** 2).sum()).passed


def wrap_in_two_steps(frame):
    """A student's wrapper that reaches the package's crop through an alias and a helper of its own."""
    from a3c_core.preprocess import crop as cut

    def helper(f):
        return cut(f)

    return helper(frame)


#: (check, a submission that only hands the work to the package's own answer, what the verdict names)
WRAPPERS = [
    (checks.crop, lambda f: preprocess.crop(f), "preprocess.crop"),
    (checks.crop, wrap_in_two_steps, "preprocess.crop"),
    (checks.crop, lambda f: checks.crop.reference(f), "preprocess.crop"),
    (checks.normalize, lambda im: preprocess.normalize(im), "preprocess.normalize"),
    (checks.state, lambda f, h, w: preprocess.preprocess(f, h, w), "preprocess.preprocess"),
    (checks.conv_output_size, lambda n: model.conv_output_size(n), "model.conv_output_size"),
    (checks.conv_params, lambda i, o, k: checks.conv_params.reference(i, o, k), "checks.conv_params.reference"),
    (checks.run_sequence, lambda net, states: checks.run_sequence.reference(net, states),
     "checks.run_sequence.reference"),
    (checks.copy_gradients, lambda local, shared_model: shared.copy_gradients(local, shared_model),
     "shared.copy_gradients"),
    (checks.n_step_returns, lambda r, b, g: loss.n_step_returns(r, b, g), "loss.n_step_returns"),
    # with gamma 0 and no bootstrap, the returns are the rewards: a3c_loss gives exactly the asked term
    (checks.value_loss, lambda v, r: loss.a3c_loss(r.tolist(), v, torch.zeros(len(v)), torch.zeros(len(v)),
                                                   0.0, 0.0).value, "loss.a3c_loss"),
    (checks.policy_loss, lambda lp, v, r: loss.a3c_loss(r.tolist(), v, lp, torch.zeros(len(v)), 0.0, 0.0).policy,
     "loss.a3c_loss"),
    (checks.bytes_per_update, lambda n: checks.bytes_per_update.reference(n), "checks.bytes_per_update.reference"),
]


@pytest.mark.parametrize(("check", "wrapper", "called"), WRAPPERS,
                         ids=[f"{check.__name__}-{i}" for i, (check, _, _) in enumerate(WRAPPERS)])
def test_a_function_that_calls_the_packages_answer_does_not_pass(check, wrapper, called) -> None:
    result = check(wrapper)
    assert_fails(result, f"calls {called}", "yourself")
    assert sys.getprofile() is None, "the check must take its profile hook away again"


def test_the_wrapper_guard_leaves_a_profiler_of_the_students_in_place() -> None:
    def profiler(frame, event, arg):
        return None

    sys.setprofile(profiler)
    try:
        assert not checks.crop(lambda f: preprocess.crop(f)).passed
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)


def test_package_helpers_that_are_not_the_answer_may_be_used() -> None:
    """The state exercise may use preprocess.resize and to_channels_first (the reference solution does)."""
    assert "preprocess.resize" in inspect.getsource(S01.my_state)
    assert checks.state(S01.my_state).passed


def test_passing_the_result_instead_of_the_function_is_explained() -> None:
    result = checks.crop(np.zeros((210, 160, 3), np.uint8))
    assert not result.passed and "without calling it" in result.message


# --- notebook 01 -------------------------------------------------------------------------------
def test_crop_wrong_answers() -> None:
    assert_fails(checks.crop(lambda f: f[34:194]), "rows are not", "first row is row 34", "row 35")
    assert_fails(checks.crop(lambda f: f[:, 35:195]), "cut columns", "axis 0")
    assert_fails(checks.crop(lambda f: f), "whole", "frame[35:195]")
    assert_fails(checks.crop(lambda f: f[35:190]), "(155, 160, 3)", "(160, 160, 3)")
    assert_fails(checks.crop(lambda f: f[35:195].astype(np.float32)), "dtype", "uint8")
    assert_fails(checks.crop(lambda f: f[35:195].tolist()), "numpy array")
    assert_fails(checks.crop(lambda f: f[35:195][::-1]), "rows are not", "first row is row 194")


def test_crop_that_writes_into_the_frame_fails() -> None:
    def scribble(frame):
        frame[:35] = 0
        return frame[35:195]

    assert_fails(checks.crop(scribble), "changed the frame")


def test_normalize_wrong_answers() -> None:
    assert_fails(checks.normalize(lambda im: im / 255.0), "float64", "float32")
    assert_fails(checks.normalize(lambda im: im // 255), "integer division")
    assert_fails(checks.normalize(lambda im: im.astype(np.float32)), "divide by 255")
    assert_fails(checks.normalize(lambda im: im.astype(np.float32) / 256), "not 256")
    assert_fails(checks.normalize(lambda im: (im.astype(np.float32) / 255).ravel()), "keeps the shape")
    assert_fails(checks.normalize(lambda im: (im / 255).tolist()), "return a numpy array, got list")
    in_place = lambda im: np.divide(im, 255, out=im, casting="unsafe")  # noqa: E731
    assert_fails(checks.normalize(in_place), "changed its input in place")
    assert_fails(checks.normalize(lambda im: im.astype(np.float32) / 255 + 0.5), "values reach 1.5")
    assert_fails(checks.normalize(lambda im: np.sqrt(im / np.float32(255))), "some values differ", "p / 255")


def test_state_wrong_answers() -> None:
    channels_last = lambda f, h, w: preprocess.resize(preprocess.normalize(preprocess.crop(f)), h, w)  # noqa: E731
    assert_fails(checks.state(channels_last), "channels last", "to_channels_first")
    no_crop = lambda f, h, w: preprocess.to_channels_first(preprocess.resize(preprocess.normalize(f), h, w))  # noqa: E731
    assert_fails(checks.state(no_crop), "pixels differ", "crop rows 35..194")
    not_normalized = lambda f, h, w: preprocess.to_channels_first(  # noqa: E731
        preprocess.resize(preprocess.crop(f), h, w).astype(np.float32))
    assert_fails(checks.state(not_normalized), "0..1")
    fixed_size = lambda f, h, w: S01.my_state(f, 160, 160)  # noqa: E731
    assert_fails(checks.state(fixed_size), "should have shape (3, 80, 80)")
    assert_fails(checks.state(lambda f, h, w: S01.my_state(f, h, w).astype(float)), "dtype float64")
    assert_fails(checks.state(lambda f, h, w: S01.my_state(f, h, w) * 0.5), "pixels differ")
    assert_fails(checks.state(lambda f, h, w: S01.my_state(f, h, w).tolist()), "numpy array")


def test_state_accepts_resizing_before_normalizing() -> None:
    swapped = lambda f, h, w: preprocess.to_channels_first(  # noqa: E731
        preprocess.normalize(preprocess.resize(preprocess.crop(f), h, w)))
    assert checks.state(swapped).passed


# --- notebook 02 -------------------------------------------------------------------------------
def test_conv_output_size_wrong_answers() -> None:
    def floor_halving(size):
        for _ in range(5):
            size //= 2
        return size

    assert_fails(checks.conv_output_size(floor_halving), "rounds up", "ceil(n / 2)")
    assert_fails(checks.conv_output_size(lambda n: (n + 1) // 2), "after one convolution", "five")
    assert_fails(checks.conv_output_size(lambda n: n // 16), "after five convolutions")
    assert_fails(checks.conv_output_size(lambda n: 5.0), "whole number")
    assert_fails(checks.conv_output_size(lambda n: True), "whole number", "got bool")


def test_conv_output_size_without_padding_is_named() -> None:
    def no_padding(size):
        for _ in range(5):
            size = (size - 3) // 2 + 1
        return size

    assert_fails(checks.conv_output_size(no_padding), "without padding", "pad by 1")


def test_conv_params_wrong_answers() -> None:
    assert_fails(checks.conv_params(lambda i, o, k: i * o * k * k), "bias")
    assert_fails(checks.conv_params(lambda i, o, k: i * o * k + o), "has 224 parameters")


def test_run_sequence_wrong_answers() -> None:
    def reset_every_step(model, states):
        values = [model(s.unsqueeze(0), model.initial_state())[1][0] for s in states]
        return torch.stack(values)

    assert_fails(checks.run_sequence(reset_every_step), "only the first value", "hidden state")

    def batch_all(model, states):
        return model(states, model.initial_state(len(states)))[1]

    assert_fails(checks.run_sequence(batch_all), "zero hidden state")

    def backwards(model, states):
        return S02.my_run_sequence(model, states.flip(0)).flip(0)

    assert_fails(checks.run_sequence(backwards), "one at a time")

    def last_only(model, states):
        return S02.my_run_sequence(model, states)[-1:]

    assert_fails(checks.run_sequence(last_only), "return 6 values")
    assert_fails(checks.run_sequence(lambda model, states: model(states[0], model.initial_state())),
                 "ValueError", "state must have shape")


# --- notebook 03 -------------------------------------------------------------------------------
def test_run_sequence_accepts_a_list_of_value_tensors() -> None:
    def as_list(model, states):
        return list(S02.my_run_sequence(model, states))

    assert checks.run_sequence(as_list).passed


def test_adding_to_a_gradient_that_is_none_is_explained() -> None:
    def add(local, shared_model):
        for mine, theirs in zip(local.parameters(), shared_model.parameters()):
            theirs.grad += mine.grad

    assert_fails(checks.copy_gradients(add), "TypeError", ".grad starts as None", "shared_param.grad = local_param.grad")


def test_copy_gradients_wrong_answers() -> None:
    def copy_weights(local, shared):
        shared.load_state_dict(local.state_dict())

    assert_fails(checks.copy_gradients(copy_weights), "shared weights changed")

    def forgets(local, shared):
        for p in shared.parameters():
            p.grad = None

    assert_fails(checks.copy_gradients(forgets), "no .grad")

    def accumulates(local, shared):
        for mine, theirs in zip(local.parameters(), shared.parameters()):
            theirs.grad = mine.grad if theirs.grad is None else theirs.grad + mine.grad

    assert_fails(checks.copy_gradients(accumulates), "added to, not replaced")

    def zeros(local, shared):
        for p in shared.parameters():
            p.grad = torch.zeros_like(p)

    assert_fails(checks.copy_gradients(zeros), "0.weight got a gradient different from the local one;")

    def steps(local, shared):
        for p in shared.parameters():
            p.data.add_(1.0)

    assert_fails(checks.copy_gradients(steps), "shared weights changed")


def test_sync_local_wrong_answers() -> None:
    def wrong_direction(local, shared):
        shared.load_state_dict(local.state_dict())

    assert_fails(checks.sync_local(wrong_direction), "shared model changed", "from the shared model to the local")
    assert_fails(checks.sync_local(lambda local, shared: None), "still differs")

    def same_memory(local, shared):
        for mine, theirs in zip(local.parameters(), shared.parameters()):
            mine.data = theirs.data

    assert_fails(checks.sync_local(same_memory), "private copy")


# --- notebook 04 -------------------------------------------------------------------------------
def test_n_step_returns_wrong_answers() -> None:
    def no_bootstrap(rewards, bootstrap, gamma):
        return S04.my_n_step_returns(rewards, 0.0, gamma)

    assert_fails(checks.n_step_returns(no_bootstrap), "bootstrap value is missing", "R_T = V(s_T)")

    def forward(rewards, bootstrap, gamma):
        out, running = [], 0.0
        for r in rewards:
            running = r + gamma * running
            out.append(running)
        return out

    assert_fails(checks.n_step_returns(forward), "discounted forward")
    assert_fails(checks.n_step_returns(lambda r, b, g: [2 * x for x in r]), "R_0 should be 0.9801")
    assert_fails(checks.n_step_returns(lambda r, b, g: S04.my_n_step_returns(r, b, g)[:-1]), "return 3 returns")
    assert_fails(checks.n_step_returns(lambda r, b, g: "abc"), "should be numbers", "got str")


def test_n_step_returns_accepts_lists_arrays_and_tensors() -> None:
    assert checks.n_step_returns(lambda r, b, g: np.array(S04.my_n_step_returns(r, b, g))).passed
    assert checks.n_step_returns(lambda r, b, g: torch.tensor(S04.my_n_step_returns(r, b, g))).passed


def test_value_loss_wrong_answers() -> None:
    assert_fails(checks.value_loss(lambda v, r: ((r - v) ** 2).mean()), "mean", "sums")
    assert_fails(checks.value_loss(lambda v, r: 0.5 * ((r - v) ** 2).sum()), "value_coef")
    assert_fails(checks.value_loss(lambda v, r: (r - v).abs().sum()), "square")
    assert_fails(checks.value_loss(lambda v, r: ((r - v.detach()) ** 2).sum()), "no gradient")
    assert_fails(checks.value_loss(lambda v, r: (r - v) ** 2), "one number")
    assert_fails(checks.value_loss(lambda v, r: ((r - v) ** 2).sum().item()), "torch tensor")
    assert_fails(checks.value_loss(lambda v, r: ((r - v) ** 2).sum() + 1), "value loss is 12.0665", "13.0665")


def test_policy_loss_wrong_answers() -> None:
    assert_fails(checks.policy_loss(lambda lp, v, r: -(lp * (r - v)).sum()), "detach", "flows into the values")
    assert_fails(checks.policy_loss(lambda lp, v, r: (lp * (r - v).detach()).sum()), "sign is flipped")
    assert_fails(checks.policy_loss(lambda lp, v, r: -(lp * r).sum()), "advantage")
    assert_fails(checks.policy_loss(lambda lp, v, r: -(lp * (r - v).detach()).mean()), "mean")
    assert_fails(checks.policy_loss(lambda lp, v, r: -(lp.detach() * (r - v).detach()).sum()), "no gradient")
    assert_fails(checks.policy_loss(lambda lp, v, r: -(lp * (r - v).detach()).sum() * 2), "policy loss is 3.3300")
    assert_fails(checks.policy_loss(lambda lp, v, r: -(lp * (r - v).detach())), "one number", "shape (3,)")

    def through_a_constant(log_probs, values, returns):  # the right number, but its gradient goes elsewhere
        return -(log_probs.detach() * (returns - values).detach()).sum() * torch.ones((), requires_grad=True)

    assert_fails(checks.policy_loss(through_a_constant), "no gradient reaches log_probs")


# --- notebook 00 -------------------------------------------------------------------------------
def test_setup_passes_here_and_names_each_item() -> None:
    results = checks.setup()
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    text = " ".join(r.message for r in results)
    for item in ("Python", "torch", "gymnasium", "ale_py", "pong", "space_invaders", "CPU cores", "spawn"):
        assert item in text


def test_a_missing_rom_gives_advice() -> None:
    result = checks.rom_present("no_such_game")
    assert not result.passed
    assert "make lab" in result.message and "no_such_game" in result.message


# --- the notebooks and the solutions stay in step ------------------------------------------------
@pytest.mark.parametrize("number", ["01", "02", "03", "04", "09"])
def test_every_exercise_skeleton_has_a_solution_and_a_check(number: str) -> None:
    (path,) = SOLUTIONS.parent.glob(f"{number}_*.ipynb")
    source = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
    skeletons = re.findall(r"^def (my_\w+)\(", source, flags=re.MULTILINE)
    checked = re.findall(r"^checks\.(\w+)\((my_\w+)\)$", source, flags=re.MULTILINE)
    assert len(skeletons) >= 2, f"{path.name} should end with at least two exercises"
    solutions = load_solutions(number)
    for name in skeletons:
        assert callable(getattr(solutions, name, None)), f"solutions_{number}.py lacks {name}"
    assert sorted(student for _, student in checked) == sorted(skeletons), "every skeleton is checked once"
    for check_name, student in checked:
        assert getattr(checks, check_name)(getattr(solutions, student)).passed


def test_bytes_per_update_wrong_answers() -> None:
    assert_fails(checks.bytes_per_update(lambda n: n), "number of parameters", "4 bytes")
    assert_fails(checks.bytes_per_update(lambda n: 8 * n), "both ways")
    assert_fails(checks.bytes_per_update(lambda n: 2 * n), "float16")
    assert_fails(checks.bytes_per_update(lambda n: 4 * n + 100), "1,782,044 bytes")
    assert_fails(checks.bytes_per_update(lambda n: "4n"), "one number")
    assert_fails(checks.bytes_per_update(lambda n: None), "one number of bytes", "NoneType")


def test_workers_per_server_accepts_whole_workers() -> None:
    assert checks.workers_per_server(lambda server, steps, rollout: int(server * rollout / steps)).passed
    assert checks.workers_per_server(lambda server, steps, rollout: math.floor(server * rollout / steps)).passed
    assert_fails(checks.workers_per_server(lambda server, steps, rollout: math.ceil(server * rollout / steps)),
                 "feeds 6.4 workers")


def test_workers_per_server_wrong_answers() -> None:
    assert_fails(checks.workers_per_server(lambda server, steps, rollout: server / steps), "one gradient per rollout")
    assert_fails(checks.workers_per_server(lambda server, steps, rollout: steps / rollout / server), "upside down")
    assert_fails(checks.workers_per_server(lambda server, steps, rollout: server * rollout), "feeds 6.4 workers")
    assert_fails(checks.workers_per_server(lambda server, steps, rollout: None), "one number of workers")


def test_the_verdict_marks_are_text_that_a_plain_monospace_font_draws() -> None:
    """Emoji marks show as empty boxes where no emoji font is installed. The marks are Dingbats that
    DejaVu Sans Mono (JupyterLab's monospace fallback on Linux) draws: asked of fontconfig where it is."""
    from a3c_core.checks import NOT_YET, PASSED

    def families(pattern: str) -> str:
        return subprocess.run(["fc-list", pattern, "family"], capture_output=True, text=True).stdout

    dejavu = shutil.which("fc-list") is not None and "DejaVu Sans Mono" in families(":")
    for mark in (PASSED, NOT_YET):
        assert 0x2700 <= ord(mark) < 0x27C0, f"{mark!r} is not a Dingbat"
        if dejavu:
            assert "DejaVu Sans Mono" in families(f":charset={ord(mark):x}"), f"DejaVu Sans Mono lacks {mark!r}"
    for notebook in (Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"):
        assert not {"\u2705", "\u274c"} & set(notebook.read_text()), f"{notebook.name} uses an emoji mark"
