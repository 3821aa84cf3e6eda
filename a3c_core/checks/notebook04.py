"""The checks of notebook 04: the loss."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from .. import loss
from .exercise import Case, Exercise, first_difference, float_array, mistake, reaches, scalar_tensor


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
     (lambda a: first_difference(a.got, a.want),
      "for {where}, R_{found[t]} should be {found[want_t]:.4f}, you gave {found[got_t]:.4f}")],
    "Right: R_t = r_t + gamma R_(t+1), started from the bootstrap value, as loss.n_step_returns does.",
    prepare=lambda got: float_array(got, "the returns"))


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
     (lambda a: not reaches(a.got, a.values), "the number is right but it is cut off from the values (no gradient): keep it a tensor "
                             "expression of values, without .item() or .detach()")],
    "Right: sum over the rollout of (R_t - V(s_t))^2, with the gradient flowing into the values.",
    prepare=lambda got: scalar_tensor(got, "the value loss"), answers=(loss.a3c_loss,))

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
     (lambda a: reaches(a.got, a.values),
      "the number is right, but the gradient flows into the values through the advantage: "
      "detach it, advantage = (returns - values).detach(); the value loss alone trains V"),
     (lambda a: not reaches(a.got, a.log_probs), "the number is right but no gradient reaches log_probs; keep it a tensor expression "
                                "of them")],
    "Right: -sum_t log pi(a_t|s_t) * A_t with the advantage detached, as loss.a3c_loss computes it.",
    prepare=lambda got: scalar_tensor(got, "the policy loss"), answers=(loss.a3c_loss,))
