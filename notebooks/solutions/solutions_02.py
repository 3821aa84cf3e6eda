"""Reference solutions of notebook 02 (the conv-GRU model). Check them with ``a3c_core.checks``."""

import torch

from a3c_core.model import ActorCritic


def my_conv_output_size(size: int) -> int:
    """Side length after five 3x3 convolutions with stride 2 and padding 1."""
    for _ in range(5):
        size = (size + 2 * 1 - 3) // 2 + 1  # floor((n + 2p - k) / s) + 1
    return size


def my_conv_params(in_channels: int, out_channels: int, kernel: int) -> int:
    """Parameters of ``nn.Conv2d(in_channels, out_channels, kernel)``: weights and biases."""
    return out_channels * in_channels * kernel * kernel + out_channels


def my_run_sequence(model: ActorCritic, states: torch.Tensor) -> torch.Tensor:
    """``(T, C, H, W)`` states, one step at a time from a fresh hidden state -> ``(T,)`` values."""
    hidden = model.initial_state()
    values = []
    for state in states:
        _, value, hidden = model(state.unsqueeze(0), hidden)
        values.append(value[0])
    return torch.stack(values)
