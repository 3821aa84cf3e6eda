"""The checks of notebook 02: the conv-GRU model."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import model
from .exercise import Case, Exercise, mistake, float_array


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
    prepare=lambda got: float_array(got, "the values"))
