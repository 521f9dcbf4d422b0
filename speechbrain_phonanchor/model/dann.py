"""Domain-adversarial training (DANN, Ganin & Lempitsky 2015): the standard
adversarial peer of AGA-CL, on the same features, network and harness.

A :class:`DomainDiscriminator` predicts source (0) vs target (1) from the
utterance embedding through a gradient-reversal layer: the discriminator
learns to tell the domains apart while the reversed gradient pushes the
network towards domain-invariant embeddings.  The reversal strength follows
the usual schedule ``λ(p) = 2 / (1 + exp(−γ·p)) − 1`` over training progress
``p ∈ [0, 1]`` (γ = 10), so early noisy gradients do not swamp the emotion loss.

Example
-------
>>> import torch
>>> disc = DomainDiscriminator(input_size=4, hidden_size=8)
>>> emb = torch.randn(6, 4, requires_grad=True)
>>> domains = torch.tensor([0, 0, 0, 1, 1, 1])
>>> loss = disc.loss(emb, domains, progress=1.0)
>>> loss.backward()
>>> emb.grad.shape
torch.Size([6, 4])
"""

import math

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, strength):
        ctx.strength = strength
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad_output):
        return -ctx.strength * grad_output, None


def reverse_gradient(inputs, strength=1.0):
    """Identity in the forward pass; multiplies the gradient by ``-strength`` in the backward pass.

    >>> x = torch.ones(2, requires_grad=True)
    >>> reverse_gradient(x, 0.5).sum().backward()
    >>> x.grad
    tensor([-0.5000, -0.5000])
    """
    return _ReverseGradient.apply(inputs, float(strength))


def reversal_strength(progress, gamma=10.0):
    """The DANN schedule ``2 / (1 + exp(−γ·p)) − 1``: 0 at the start, → 1 at the end.

    >>> reversal_strength(0.0), round(reversal_strength(1.0), 4)
    (0.0, 0.9999)
    """
    return 2.0 / (1.0 + math.exp(-gamma * min(max(progress, 0.0), 1.0))) - 1.0


class DomainDiscriminator(nn.Module):
    """A two-layer MLP that predicts the domain of an utterance embedding behind gradient reversal.

    Arguments
    ---------
    input_size : int
        Size of the utterance embedding.
    hidden_size : int
        Hidden layer size.
    gamma : float
        Steepness of the reversal-strength schedule.
    """

    def __init__(self, input_size, hidden_size=128, gamma=10.0):
        super().__init__()
        self.gamma = gamma
        self.net = nn.Sequential(nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 2))

    def forward(self, embeddings, progress=1.0):
        """Domain logits (B, 2) with the gradient reversed at the scheduled strength."""
        return self.net(reverse_gradient(embeddings, reversal_strength(progress, self.gamma)))

    def loss(self, embeddings, domains, progress=1.0):
        """Cross-entropy of the domain prediction; ``domains`` holds 0 (source) / 1 (target)."""
        return nn.functional.cross_entropy(self.forward(embeddings, progress), domains)
