"""The conv-GRU actor-critic (notebook 02).

::

    state (B, C, H, W) --centre each channel (seed preset)--> (B, C, H, W)
                       --conv 3x3 stride 2, ELU--> ... 5 times ... --> (B, 32, H/32, W/32)
                       --flatten--> (B, F) --GRUCell--> hidden (B, hidden_size)
                                                         |--> policy head: logits (B, n_actions)
                                                         |--> value head:  value  (B,)

Channels, 1-frame input (3 or 1): ``C -> 8 -> 16 -> 32 -> 32 -> 32``. The 4-frame input (12 or 4
channels) starts wider, ``C -> 16 -> 16 -> 32 -> 32 -> 32``, and is otherwise identical. Each
stride-2 convolution halves the image (rounding up): 160 -> 80 -> 40 -> 20 -> 10 -> 5.

Centring (``center_input``, :func:`center_channels`) subtracts each channel's mean over the image
before the first convolution. Pong's brown background fills almost every pixel, so the centred
state is about 0 everywhere except on the ball, the paddles and the walls. Without it, at 160x160
colour, the network needed thousands of updates before it found the ball at all; with it, a few
hundred (the ball probe, ``benchmarks/HISTORY.md``).

The GRU is what lets a single frame still "see" motion: its hidden state carries what earlier
frames showed. Reset it (zeros) at the start of every episode.

:meth:`ActorCritic.act` is the one place where logits become a move: softmax, then a sample
(training) or the argmax (evaluation), with the log-probability, entropy and value the loss needs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import A3CConfig

#: Output channels of the five convolutions for 1-frame and for 4-frame input.
CHANNELS = {1: (8, 16, 32, 32, 32), 4: (16, 16, 32, 32, 32)}


class PolicyStep(NamedTuple):
    """What :meth:`ActorCritic.act` picked and what the model thinks, for a batch of B states."""

    action: torch.Tensor    # (B,) int64: sampled from pi(.|s), or its argmax when greedy
    log_prob: torch.Tensor  # (B,) log pi(action | s), with gradient (the policy loss needs it)
    entropy: torch.Tensor   # (B,) H(pi(.|s)) = -sum_a pi(a|s) log pi(a|s)
    value: torch.Tensor     # (B,) V(s)
    hidden: torch.Tensor    # (B, hidden_size) the GRU state to feed into the next step
    probs: torch.Tensor     # (B, n_actions) pi(.|s)


def center_channels(state: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> the same with each channel's mean over the image subtracted (per state)."""
    return state - state.mean(dim=(2, 3), keepdim=True)


def conv_output_size(size: int, layers: int = 5) -> int:
    """Side length after ``layers`` 3x3 convolutions with stride 2 and padding 1 (each: ceil(n/2))."""
    for _ in range(layers):
        size = (size + 1) // 2
    return size


class ActorCritic(nn.Module):
    """Conv layers -> GRUCell -> policy logits and state value.

    Args:
        in_channels: channels of one input state (3 per colour frame, 1 per gray frame, times stack).
        n_actions: size of the game's action set.
        height, width: size of the input state in pixels.
        hidden_size: size of the GRU hidden state.
        frame_stack: 1 or 4; picks the channel plan in ``CHANNELS``.
        center_input: subtract each input channel's mean over the image first.
    """

    def __init__(self, in_channels: int, n_actions: int, height: int = 160, width: int = 160,
                 hidden_size: int = 256, frame_stack: int = 1, center_input: bool = False):
        super().__init__()
        if frame_stack not in CHANNELS:
            raise ValueError(f"frame_stack must be one of {sorted(CHANNELS)}, got {frame_stack!r}")
        self.in_channels, self.n_actions, self.hidden_size = in_channels, n_actions, hidden_size
        self.center_input = center_input
        self.input_shape = (in_channels, height, width)
        layers: list[nn.Module] = []
        channels = in_channels
        for out in CHANNELS[frame_stack]:
            layers += [nn.Conv2d(channels, out, kernel_size=3, stride=2, padding=1), nn.ELU()]
            channels = out
        self.convs = nn.Sequential(*layers)
        self.features = channels * conv_output_size(height) * conv_output_size(width)
        self.gru = nn.GRUCell(self.features, hidden_size)
        self.policy = nn.Linear(hidden_size, n_actions)
        self.value = nn.Linear(hidden_size, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        # Orthogonal conv weights with gain sqrt(2) keep the signal's scale through five layers (the
        # default init shrinks it, and learning then stalls for a long time); small policy weights
        # start the agent near a uniform policy; GRU biases start at zero.
        for layer in self.convs:
            if isinstance(layer, nn.Conv2d):
                nn.init.orthogonal_(layer.weight, gain=2 ** 0.5)
                nn.init.zeros_(layer.bias)
        nn.init.orthogonal_(self.policy.weight, gain=0.01)
        nn.init.zeros_(self.policy.bias)
        nn.init.orthogonal_(self.value.weight, gain=1.0)
        nn.init.zeros_(self.value.bias)
        nn.init.zeros_(self.gru.bias_ih)
        nn.init.zeros_(self.gru.bias_hh)

    @classmethod
    def from_config(cls, config: A3CConfig, n_actions: int) -> "ActorCritic":
        """The model for the states of ``config`` and a game with ``n_actions`` actions."""
        return cls(config.in_channels, n_actions, config.height, config.width, config.hidden_size,
                   config.frame_stack, config.center_input)

    def initial_state(self, batch_size: int = 1) -> torch.Tensor:
        """A fresh (all-zero) hidden state ``(batch_size, hidden_size)``."""
        return torch.zeros(batch_size, self.hidden_size)

    def forward(self, state: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step.

        Args:
            state: ``(B, C, H, W)`` float32 in 0..1.
            hidden: ``(B, hidden_size)``, the GRU state after the previous step.

        Returns:
            logits ``(B, n_actions)``, value ``(B,)``, next hidden ``(B, hidden_size)``.
        """
        if state.dim() != 4 or tuple(state.shape[1:]) != self.input_shape:
            raise ValueError(f"state must have shape (B, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(state.shape)}")
        x = self.convs(self.conv_input(state)).flatten(1)
        hidden = self.gru(x, hidden)
        return self.policy(hidden), self.value(hidden).squeeze(-1), hidden

    def act(self, state: torch.Tensor, hidden: torch.Tensor, greedy: bool = False,
            action: torch.Tensor | None = None) -> PolicyStep:
        """Pick an action for each state and say what the model thinks of it: the one place where a
        worker, the evaluator, the notebooks and the checks turn logits into a move.

        Args:
            state: ``(B, C, H, W)`` float32 in 0..1.
            hidden: ``(B, hidden_size)``, the GRU state after the previous step.
            greedy: take the most probable action (evaluation) instead of sampling one with
                ``torch.multinomial`` from softmax(logits) (training: sampling is the exploration).
            action: ``(B,)`` actions already taken: return what the model thinks of these instead
                of picking (replaying a rollout).

        Returns:
            a :class:`PolicyStep`: action, log-prob, entropy and value ``(B,)``, next hidden
            ``(B, hidden_size)`` and the probabilities ``(B, n_actions)``, all still in the graph.
        """
        logits, value, hidden = self(state, hidden)
        log_probs = F.log_softmax(logits, dim=-1)
        probs = log_probs.exp()
        if action is None:
            action = probs.argmax(dim=-1) if greedy else torch.multinomial(probs, num_samples=1).squeeze(-1)
        log_prob = log_probs.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs * probs).sum(dim=-1)
        return PolicyStep(action, log_prob, entropy, value, hidden, probs)

    def conv_input(self, state: torch.Tensor) -> torch.Tensor:
        """What the first convolution reads: ``state`` ``(B, C, H, W)``, centred if ``center_input``."""
        return center_channels(state) if self.center_input else state

    def parameter_count(self) -> dict[str, int]:
        """Trainable parameters per part (``convs``, ``gru``, ``policy``, ``value``) and ``total``."""
        counts = {name: sum(p.numel() for p in part.parameters())
                  for name, part in (("convs", self.convs), ("gru", self.gru), ("policy", self.policy),
                                     ("value", self.value))}
        counts["total"] = sum(counts.values())
        return counts

    def extra_repr(self) -> str:
        counts = self.parameter_count()
        return (f"input={self.input_shape}, centred={self.center_input}, features={self.features}, "
                f"actions={self.n_actions}, "
                f"parameters={counts['total']:,} (convs {counts['convs']:,}, gru {counts['gru']:,})")
