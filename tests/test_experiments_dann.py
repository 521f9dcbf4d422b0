"""DANN and in-domain variants of train.py / PhonAnchorBrain on the tiny generated pair."""

import json
import pathlib

import pytest
import speechbrain as sb
import torch
from pair_fixtures import make_pair, run_train

from speechbrain_phonanchor.data import collate_pairs
from speechbrain_phonanchor.model.dann import reversal_strength


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture(scope="module")
def dann_brain(pair):
    return run_train(pair, "dann", variant="DANN", number_of_epochs=2)


def metrics(brain):
    return json.loads(pathlib.Path(brain.hparams.metrics_file).read_text(encoding="utf-8"))


def a_batch(brain):
    return collate_pairs([brain.paired_set[i] for i in range(8)])


def test_dann_run_trains_discriminator_and_writes_metrics(dann_brain):
    result = metrics(dann_brain)
    assert result["variant"] == "DANN" and result["dann_weight"] == 1.0 and result["adapt_weight"] == 0.0
    assert result["epochs"] == 2 and result["best_epoch"] in (1, 2) and result["n_train"] == 16
    assert 0.0 <= result["target_test_uar"] <= 1.0
    assert dann_brain.hparams.adapt_loss.n_batches == 0  # no triplet loss in DANN
    assert 0.0 < dann_brain.train_stats["reversal_strength"] < 1.0
    assert 0.0 <= dann_brain.train_stats["domain_accuracy"] <= 1.0
    saved = pathlib.Path(dann_brain.checkpointer.find_checkpoint(max_key="UAR").path)
    assert (saved / "discriminator.ckpt").is_file()


def test_dann_step_updates_discriminator_and_network(dann_brain):
    brain = dann_brain
    brain.on_stage_start(sb.Stage.TRAIN, epoch=2)
    brain.step = 2
    disc_before = [p.detach().clone() for p in brain.modules.discriminator.parameters()]
    net_before = [p.detach().clone() for p in brain.modules.model.parameters()]
    brain.fit_batch(a_batch(brain))
    assert brain.domain_batches == 1
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, brain.modules.discriminator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(net_before, brain.modules.model.parameters()))


def test_domain_loss_reverses_gradients_into_the_network(dann_brain):
    brain = dann_brain
    brain.modules.eval()  # no dropout: both passes see the same network
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    batch = a_batch(brain)
    model, disc = brain.modules.model, brain.modules.discriminator

    def gradients(loss_fn):
        brain.modules.zero_grad()
        source_out, target_out = brain.compute_forward(batch, sb.Stage.TRAIN)
        loss_fn(source_out, target_out).backward()
        return ([p.grad.clone() for p in model.parameters() if p.grad is not None],
                [p.grad.clone() for p in disc.parameters()])

    reversed_net, reversed_disc = gradients(lambda s, t: brain.domain_loss(s, t, progress=0.5))
    domains = torch.tensor([0] * 8 + [1] * 8)
    plain_net, plain_disc = gradients(lambda s, t: torch.nn.functional.cross_entropy(
        disc.net(torch.cat([s.utterance_embeddings, t.utterance_embeddings])), domains))
    strength = reversal_strength(0.5, disc.gamma)
    assert len(reversed_net) == len(plain_net) > 0
    assert any(g.abs().sum() > 0 for g in plain_net)
    for got, plain in zip(reversed_net, plain_net):
        assert torch.allclose(got, -strength * plain, atol=1e-6)
    for got, plain in zip(reversed_disc, plain_disc):  # the discriminator itself descends its loss
        assert torch.allclose(got, plain, atol=1e-6)


def test_in_domain_trains_on_target_labels(pair):
    brain = run_train(pair, "in_domain", variant="in-domain", number_of_epochs=1)
    result = metrics(brain)
    assert result["valid_set"] == "target valid" and result["n_train"] == 12 and result["n_valid"] == 8
    assert result["adapt_weight"] == 0.0 and result["dann_weight"] == 0.0
    assert all(utt.startswith("tgt_train_") for utt in brain.paired_set.source.ids)
    assert "discriminator" not in brain.modules
