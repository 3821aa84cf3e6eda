"""The A3C loss of one rollout (notebook 04).

A worker plays ``T <= rollout_steps`` steps and keeps, for each step t, the reward r_t, the value
V(s_t), log pi(a_t|s_t) and the policy entropy H_t. Then, with R_T = V(s_T) (0 if the game terminated;
a time limit's cut still bootstraps from V(s_T), since the game could have gone on):

    n-step return      R_t = r_t + gamma * R_{t+1}
    advantage          A_t = R_t - V(s_t)                 (GAE(lambda) below; lambda = 1 gives this)
    value loss         sum_t (R_t - V(s_t))^2
    policy loss        -sum_t log pi(a_t|s_t) * A_t       (A_t is a constant here: detached)
    entropy            sum_t H_t                          (a bonus: it keeps the policy exploring)

    total = policy_loss + value_coef * value_loss - entropy_coef * entropy

Sums, not means, over the rollout, as in the original A3C, which accumulates a gradient per step.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch


class LossTerms(NamedTuple):
    """The parts of the A3C loss; ``total`` is the one to ``backward()``."""

    total: torch.Tensor
    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor


def n_step_returns(rewards: Sequence[float], bootstrap_value: float, gamma: float) -> torch.Tensor:
    """``(T,)`` returns R_t = r_t + gamma R_{t+1}, with R_T = ``bootstrap_value`` (V(s_T), or 0 if the
    game terminated)."""
    returns = torch.empty(len(rewards))
    running = float(bootstrap_value)
    for t in reversed(range(len(rewards))):
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    return returns


def gae_advantages(rewards: Sequence[float], values: torch.Tensor, bootstrap_value: float, gamma: float,
                   lam: float) -> torch.Tensor:
    """``(T,)`` generalized advantage estimates (Schulman et al. 2016).

    delta_t = r_t + gamma V(s_{t+1}) - V(s_t);  A_t = delta_t + gamma lambda A_{t+1}.
    With ``lam=1`` this equals ``n_step_returns(...) - values``. ``values`` is ``(T,)`` and is treated
    as a constant.
    """
    values = values.detach()
    next_values = torch.cat([values[1:], torch.tensor([float(bootstrap_value)])])
    deltas = torch.as_tensor(rewards, dtype=torch.float32) + gamma * next_values - values
    advantages = torch.empty_like(values)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = float(deltas[t]) + gamma * lam * running
        advantages[t] = running
    return advantages


def a3c_loss(rewards: Sequence[float], values: torch.Tensor, log_probs: torch.Tensor, entropies: torch.Tensor,
             bootstrap_value: float, gamma: float = 0.99, gae_lambda: float = 1.0, value_coef: float = 0.5,
             entropy_coef: float = 0.01) -> LossTerms:
    """The loss of one rollout of T steps.

    Args:
        rewards: T rewards r_t.
        values: ``(T,)`` V(s_t), with gradient.
        log_probs: ``(T,)`` log pi(a_t|s_t) of the actions taken, with gradient.
        entropies: ``(T,)`` policy entropies H_t, with gradient.
        bootstrap_value: V(s_T) of the state after the last step, or 0 if the game terminated.
    """
    if not (len(rewards) == values.shape[0] == log_probs.shape[0] == entropies.shape[0]) or len(rewards) == 0:
        raise ValueError(f"a rollout needs T >= 1 rewards, values, log_probs and entropies of one length, got "
                         f"{len(rewards)}, {values.shape[0]}, {log_probs.shape[0]}, {entropies.shape[0]}")
    returns = n_step_returns(rewards, bootstrap_value, gamma)
    value_loss = ((returns - values) ** 2).sum()
    if gae_lambda == 1.0:
        advantages = (returns - values).detach()
    else:
        advantages = gae_advantages(rewards, values, bootstrap_value, gamma, gae_lambda)
    policy_loss = -(log_probs * advantages).sum()
    entropy = entropies.sum()
    total = policy_loss + value_coef * value_loss - entropy_coef * entropy
    return LossTerms(total, policy_loss, value_loss, entropy)
