"""The A3C loss against values computed by hand for a 3-step rollout."""

import pytest
import torch

from a3c_core.loss import a3c_loss, gae_advantages, n_step_returns

# A rollout: rewards 1, 0, 2; V(s_0..s_2) = 1, 3, 2; V(s_3) = 4 (bootstrap); gamma = 0.5.
REWARDS = [1.0, 0.0, 2.0]
VALUES = [1.0, 3.0, 2.0]
LOG_PROBS = [-0.5, -1.0, -2.0]
ENTROPIES = [1.0, 0.5, 0.25]


def test_n_step_returns_by_hand():
    # R_2 = 2 + 0.5*4 = 4;  R_1 = 0 + 0.5*4 = 2;  R_0 = 1 + 0.5*2 = 2
    assert n_step_returns(REWARDS, 4.0, 0.5).tolist() == [2.0, 2.0, 4.0]
    # at the end of an episode the bootstrap is 0: R_2 = 2, R_1 = 1, R_0 = 1.5
    assert n_step_returns(REWARDS, 0.0, 0.5).tolist() == [1.5, 1.0, 2.0]


def test_each_loss_term_by_hand():
    values = torch.tensor(VALUES, requires_grad=True)
    log_probs = torch.tensor(LOG_PROBS, requires_grad=True)
    entropies = torch.tensor(ENTROPIES, requires_grad=True)
    terms = a3c_loss(REWARDS, values, log_probs, entropies, bootstrap_value=4.0, gamma=0.5,
                     value_coef=0.5, entropy_coef=0.01)
    # advantages R - V = 2-1, 2-3, 4-2 = 1, -1, 2
    assert terms.value.item() == pytest.approx(1 + 1 + 4)
    assert terms.policy.item() == pytest.approx(-(-0.5 * 1 + -1.0 * -1 + -2.0 * 2))  # 3.5
    assert terms.entropy.item() == pytest.approx(1.75)
    assert terms.total.item() == pytest.approx(3.5 + 0.5 * 6 - 0.01 * 1.75)

    terms.policy.backward()
    assert values.grad is None or not values.grad.any()  # the advantage is a constant for the policy
    assert log_probs.grad.tolist() == [-1.0, 1.0, -2.0]  # d(policy loss)/d log pi = -A


def test_value_gradient_is_the_return_error():
    values = torch.tensor(VALUES, requires_grad=True)
    terms = a3c_loss(REWARDS, values, torch.tensor(LOG_PROBS), torch.tensor(ENTROPIES), 4.0, gamma=0.5)
    terms.value.backward()
    assert values.grad.tolist() == [-2.0, 2.0, -4.0]  # d/dV (R - V)^2 = -2 (R - V)


def test_gae_with_lambda_one_is_the_n_step_advantage_and_lambda_zero_is_one_step_td():
    values = torch.tensor(VALUES)
    returns = n_step_returns(REWARDS, 4.0, 0.5)
    torch.testing.assert_close(gae_advantages(REWARDS, values, 4.0, 0.5, 1.0), returns - values)
    # lambda = 0: delta_t = r_t + gamma V(s_{t+1}) - V(s_t) = 1+1.5-1, 0+1-3, 2+2-2
    assert gae_advantages(REWARDS, values, 4.0, 0.5, 0.0).tolist() == [1.5, -2.0, 2.0]
    # lambda = 0.5: A_2 = 2;  A_1 = -2 + 0.25*2 = -1.5;  A_0 = 1.5 + 0.25*(-1.5) = 1.125
    assert gae_advantages(REWARDS, values, 4.0, 0.5, 0.5).tolist() == [1.125, -1.5, 2.0]


def test_gae_option_changes_only_the_policy_term():
    args = (REWARDS, torch.tensor(VALUES), torch.tensor(LOG_PROBS), torch.tensor(ENTROPIES), 4.0)
    plain, gae = a3c_loss(*args, gamma=0.5), a3c_loss(*args, gamma=0.5, gae_lambda=0.5)
    assert gae.value == plain.value and gae.entropy == plain.entropy
    assert gae.policy.item() == pytest.approx(-(-0.5 * 1.125 + -1.0 * -1.5 + -2.0 * 2.0))


def test_mismatched_rollout_is_refused():
    with pytest.raises(ValueError, match="one length"):
        a3c_loss([1.0, 2.0], torch.zeros(3), torch.zeros(3), torch.zeros(3), 0.0)
