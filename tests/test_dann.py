"""The DANN baseline's gradient reversal and domain discriminator."""

import torch

from speechbrain_phonanchor.model.dann import DomainDiscriminator, reversal_strength, reverse_gradient


def test_reversal_is_identity_forward_and_negated_backward():
    x = torch.randn(3, 4, requires_grad=True)
    weights = torch.randn(3, 4)
    y = reverse_gradient(x, strength=2.0)
    assert torch.equal(y, x)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, -2.0 * weights)


def test_schedule_is_monotone_from_zero_to_one():
    values = [reversal_strength(p / 10) for p in range(11)]
    assert values[0] == 0.0
    assert all(a < b for a, b in zip(values, values[1:]))
    assert 0.999 < values[-1] < 1.0
    assert reversal_strength(2.0) == reversal_strength(1.0)  # clipped


def test_discriminator_learns_domains_while_encoder_gets_reversed_gradient():
    torch.manual_seed(0)
    source = torch.randn(32, 4) + torch.tensor([2.0, 0, 0, 0])
    target = torch.randn(32, 4) - torch.tensor([2.0, 0, 0, 0])
    embeddings = torch.cat([source, target])
    domains = torch.cat([torch.zeros(32), torch.ones(32)]).long()
    disc = DomainDiscriminator(4, hidden_size=16)
    optimiser = torch.optim.Adam(disc.parameters(), lr=0.05)
    for _ in range(100):
        optimiser.zero_grad()
        disc.loss(embeddings, domains).backward()
        optimiser.step()
    accuracy = (disc(embeddings).argmax(-1) == domains).float().mean()
    assert accuracy > 0.9
    # the gradient reaching the embeddings points against the discriminator's own descent direction
    emb = embeddings.clone().requires_grad_(True)
    disc.loss(emb, domains, progress=1.0).backward()
    plain = embeddings.clone().requires_grad_(True)
    nn_loss = torch.nn.functional.cross_entropy(disc.net(plain), domains)
    nn_loss.backward()
    assert torch.allclose(emb.grad, -reversal_strength(1.0) * plain.grad, atol=1e-6)
