"""The conv-GRU actor-critic: shapes, channel plans, the hidden state, parameter counts."""

import pytest
import torch

from a3c_core import A3CConfig, ActorCritic
from a3c_core.model import center_channels, conv_output_size


@pytest.mark.parametrize("frame_stack, channels, first_out", [(1, 3, 8), (4, 12, 16)])
def test_output_shapes_for_one_and_four_frames(frame_stack, channels, first_out):
    config = A3CConfig(frame_stack=frame_stack)
    model = ActorCritic.from_config(config, n_actions=6)
    assert model.convs[0].in_channels == channels and model.convs[0].out_channels == first_out
    assert model.convs[2].in_channels == first_out and model.convs[2].out_channels == 16
    assert model.features == 32 * 5 * 5  # 160 -> 80 -> 40 -> 20 -> 10 -> 5
    logits, value, hidden = model(torch.rand(2, channels, 160, 160), model.initial_state(2))
    assert logits.shape == (2, 6) and value.shape == (2,) and hidden.shape == (2, 256)


def test_fast_preset_shapes():
    model = ActorCritic.from_config(A3CConfig.preset("fast"), n_actions=3)
    assert model.features == 32 * 3 * 3 and conv_output_size(80) == 3
    logits, value, hidden = model(torch.rand(1, 1, 80, 80), model.initial_state())
    assert logits.shape == (1, 3)


def test_hidden_state_carries_history_and_reset_forgets_it():
    torch.manual_seed(0)
    model = ActorCritic(3, 6, 32, 32, hidden_size=16)
    frames = torch.rand(5, 1, 3, 32, 32)
    hidden = model.initial_state()
    assert hidden.shape == (1, 16) and not hidden.any()
    for frame in frames[:4]:
        _, _, hidden = model(frame, hidden)
    logits_with_history, value_with_history, _ = model(frames[4], hidden)
    logits_fresh, value_fresh, _ = model(frames[4], model.initial_state())
    assert not torch.allclose(value_with_history, value_fresh)  # the same frame, another past
    again, _, _ = model(frames[4], model.initial_state())
    torch.testing.assert_close(again, logits_fresh)  # a reset state has no memory at all


def test_parameter_count_and_repr():
    model = ActorCritic.from_config(A3CConfig(), n_actions=6)
    counts = model.parameter_count()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["gru"] == 3 * 256 * (800 + 256) + 2 * 3 * 256
    assert f"{counts['total']:,}" in repr(model)


def test_wrong_input_shape_names_the_expected_shape():
    model = ActorCritic(3, 6, 160, 160)
    with pytest.raises(ValueError, match=r"state must have shape \(B, 3, 160, 160\)"):
        model(torch.rand(1, 3, 210, 160), model.initial_state())


def test_act_samples_in_training_and_takes_the_argmax_in_evaluation():
    torch.manual_seed(0)
    model = ActorCritic(3, 4, 32, 32, hidden_size=8)
    with torch.no_grad():
        model.policy.bias.copy_(torch.tensor([0.0, 3.0, 0.0, 0.0]))
    state = torch.rand(1, 3, 32, 32)
    greedy = {int(model.act(state, model.initial_state(), greedy=True).action) for _ in range(20)}
    sampled = [int(model.act(state, model.initial_state()).action) for _ in range(400)]
    assert greedy == {1}
    assert set(sampled) == {0, 1, 2, 3}  # exploration: every action is tried
    share = sampled.count(1) / len(sampled)
    assert share == pytest.approx(torch.softmax(torch.tensor([0.0, 3.0, 0.0, 0.0]), 0)[1].item(), abs=0.07)


def test_act_is_batched_and_agrees_with_forward():
    torch.manual_seed(0)
    model = ActorCritic(3, 4, 32, 32, hidden_size=8)
    states, hidden = torch.rand(5, 3, 32, 32), torch.randn(5, 8)
    step = model.act(states, hidden)
    assert step.action.shape == step.log_prob.shape == step.entropy.shape == step.value.shape == (5,)
    assert step.hidden.shape == (5, 8) and step.probs.shape == (5, 4) and step.action.dtype == torch.int64
    logits, value, next_hidden = model(states, hidden)
    log_pi = torch.log_softmax(logits, dim=-1)
    torch.testing.assert_close(step.log_prob, log_pi[torch.arange(5), step.action])
    torch.testing.assert_close(step.entropy, -(log_pi.exp() * log_pi).sum(dim=-1))
    torch.testing.assert_close(step.value, value)
    torch.testing.assert_close(step.hidden, next_hidden)
    torch.testing.assert_close(step.probs.sum(dim=-1), torch.ones(5))
    assert step.log_prob.grad_fn is not None and step.entropy.grad_fn is not None  # the loss backpropagates them
    greedy = model.act(states, hidden, greedy=True)
    assert torch.equal(greedy.action, logits.argmax(dim=-1))


def test_centring_removes_each_channels_mean_so_a_uniform_background_does_not_matter():
    torch.manual_seed(0)
    states = torch.rand(2, 3, 32, 32)
    centred = center_channels(states)
    torch.testing.assert_close(centred.mean(dim=(2, 3)), torch.zeros(2, 3))
    torch.testing.assert_close(centred[:, :, 5, 7] - centred[:, :, 9, 2], states[:, :, 5, 7] - states[:, :, 9, 2])
    shift = torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1)  # another background colour
    for center_input in (True, False):
        torch.manual_seed(1)
        model = ActorCritic(3, 6, 32, 32, hidden_size=16, center_input=center_input)
        _, value, _ = model(states, model.initial_state(2))
        _, value_shifted, _ = model(states + shift, model.initial_state(2))
        assert torch.allclose(value, value_shifted, atol=1e-5) == center_input
