"""Reference solutions of notebook 04 (the loss). Check them with ``a3c_core.checks``."""

import torch


def my_n_step_returns(rewards: list[float], bootstrap_value: float, gamma: float) -> list[float]:
    """R_t = r_t + gamma R_(t+1), with R_T = ``bootstrap_value``; one return per reward."""
    returns = []
    running = bootstrap_value
    for reward in reversed(rewards):
        running = reward + gamma * running
        returns.append(running)
    return returns[::-1]


def my_value_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """``(T,)`` values with gradient and ``(T,)`` returns -> sum_t (R_t - V(s_t))^2, a scalar."""
    return ((returns - values) ** 2).sum()


def my_policy_loss(log_probs: torch.Tensor, values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """-sum_t log pi(a_t|s_t) * A_t with the advantage A_t = R_t - V(s_t) held constant (detached)."""
    advantages = (returns - values).detach()
    return -(log_probs * advantages).sum()
