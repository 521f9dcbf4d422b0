"""``PhonAnchorBrain``: AGA-CL training with SpeechBrain's ``Brain``.

Training batches are :class:`~speechbrain_phonanchor.data.PairedBatch` es
(labelled source utterances, each with an unlabelled target partner);
validation and test batches are :class:`~speechbrain_phonanchor.data.SegmentBatch` es.

Per training batch:

1. source frames attend to their partner's frames (paired mode), target frames
   attend to the prototype bank (the mode they will have at test time);
2. ``L_emo`` = cross-entropy of the source logits;
3. when ``adapt_weight > 0`` the pseudo-labeler turns the target logits into
   target classes (``-1`` = none; or the analysis-subset labels), and
   ``L_adapt`` = the vowel triplet loss between target and source segment embeddings;
4. ``L = L_emo + adapt_weight · L_adapt``.

Every training epoch reseeds torch with ``seed + epoch`` and redraws the pairs,
so an interrupted and resumed run repeats the uninterrupted one.  Validation
(source) computes UAR (balanced accuracy) for early stopping and checkpoint
selection; test (target) also writes per-utterance predictions to
``hparams.predictions_file``.

Hyperparameters read from ``hparams``: ``seed``, ``adapt_weight``,
``adapt_loss``, ``pseudo_labeler``, ``epoch_counter``, ``train_logger``,
``predictions_file``, ``classes``.  Modules: ``model`` (a
:class:`~speechbrain_phonanchor.model.PhonAnchorNet`).
"""

import csv

import speechbrain as sb
import torch
from sklearn.metrics import balanced_accuracy_score
from speechbrain.utils.distributed import if_main_process

from speechbrain_phonanchor.fileio import atomic_open


def uar(targets, predictions):
    """Unweighted average recall (scikit-learn's balanced accuracy).

    >>> uar([0, 0, 1, 1], [0, 0, 1, 0])
    0.75
    """
    return float(balanced_accuracy_score(targets, predictions))


class PhonAnchorBrain(sb.Brain):
    """SpeechBrain Brain for AGA-CL (see the module docstring)."""

    def fit(self, epoch_counter, train_set, *args, **kwargs):
        """As ``Brain.fit``; keeps the paired train set to redraw its pairs every epoch."""
        self.paired_set = train_set
        return super().fit(epoch_counter, train_set, *args, **kwargs)

    def compute_forward(self, batch, stage):
        """Return ``(source_or_eval_output, target_output_or_None)``."""
        batch = batch.to(self.device)
        model = self.modules.model
        if stage != sb.Stage.TRAIN:
            return model(batch.frames, batch.lengths, batch.segments, batch.segment_mask), None
        source, target = batch.source, batch.target
        source_out = model(source.frames, source.lengths, source.segments, source.segment_mask,
                           target.frames, target.lengths)
        target_out = None
        if self.hparams.adapt_weight > 0:
            target_out = model(target.frames, target.lengths, target.segments, target.segment_mask)
        return source_out, target_out

    def compute_objectives(self, predictions, batch, stage):
        """``L_emo + adapt_weight · L_adapt`` in training; cross-entropy and predictions otherwise."""
        batch = batch.to(self.device)
        out, target_out = predictions
        labelled = batch.source if stage == sb.Stage.TRAIN else batch
        loss = torch.nn.functional.cross_entropy(out.logits, labelled.labels)
        if stage != sb.Stage.TRAIN:
            self._collect(batch, out.logits)
            return loss
        self.emo_loss_sum += loss.detach()
        if target_out is not None:
            target_labels = self.hparams.pseudo_labeler(target_out.logits, self.epoch, batch.target.labels)
            adapt = self.hparams.adapt_loss(
                target_out.segment_embeddings, batch.target.vowels, batch.target.segment_mask, target_labels,
                out.segment_embeddings, batch.source.vowels, batch.source.segment_mask, batch.source.labels,
            )
            self.adapt_loss_sum += adapt.detach()
            loss = loss + self.hparams.adapt_weight * adapt
        return loss

    def _collect(self, batch, logits):
        probabilities = torch.softmax(logits.detach(), dim=-1).cpu()
        self.ids.extend(batch.ids)
        self.targets.extend(batch.labels.cpu().tolist())
        self.probabilities.extend(probabilities.tolist())

    def on_stage_start(self, stage, epoch=None):
        """Reset the per-stage accumulators; for training also reseed and redraw the pairs."""
        self.ids, self.targets, self.probabilities = [], [], []
        self.emo_loss_sum = torch.zeros((), device=self.device)
        self.adapt_loss_sum = torch.zeros((), device=self.device)
        if stage == sb.Stage.TRAIN:
            self.epoch = epoch
            torch.manual_seed(self.hparams.seed + epoch)
            if hasattr(self.paired_set, "set_epoch"):
                self.paired_set.set_epoch(epoch)
            self.adapt_start = (self.hparams.adapt_loss.n_batches, self.hparams.adapt_loss.n_empty_batches)
            self.labeler_start = (self.hparams.pseudo_labeler.n_seen, self.hparams.pseudo_labeler.n_labelled)

    def _train_stats(self, loss):
        steps = max(self.hparams.adapt_loss.n_batches - self.adapt_start[0], 1)
        stats = {"loss": loss}
        if self.hparams.adapt_weight > 0:
            seen = self.hparams.pseudo_labeler.n_seen - self.labeler_start[0]
            stats["adapt_loss"] = float(self.adapt_loss_sum) / steps
            stats["empty_triplet_batches"] = self.hparams.adapt_loss.n_empty_batches - self.adapt_start[1]
            stats["target_labelled"] = (self.hparams.pseudo_labeler.n_labelled - self.labeler_start[1]) / max(seen, 1)
        return stats

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Keep the stage's stats in ``last_stats``; after validation log them, step the early stopper and
        save a checkpoint; after test write the predictions (train.py logs the test stats)."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = self._train_stats(stage_loss)
            return
        predictions = [max(range(len(p)), key=p.__getitem__) for p in self.probabilities]
        stats = {"loss": stage_loss, "UAR": uar(self.targets, predictions)}
        if stage == sb.Stage.VALID:
            self.hparams.epoch_counter.update_metric(stats["UAR"])
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch}, train_stats=self.train_stats, valid_stats=stats
            )
            self.checkpointer.save_and_keep_only(meta={"UAR": stats["UAR"]}, max_keys=["UAR"])
        elif if_main_process():
            self.write_predictions(predictions)
        self.last_stats = stats

    def write_predictions(self, predictions):
        """Write ``id, label, prediction, p_<class>...`` per test utterance to ``hparams.predictions_file``."""
        classes = list(self.hparams.classes)
        with atomic_open(self.hparams.predictions_file, "w") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["id", "label", "prediction"] + [f"p_{c}" for c in classes])
            for utt_id, target, predicted, probs in zip(self.ids, self.targets, predictions, self.probabilities):
                label = classes[target] if target >= 0 else ""
                writer.writerow([utt_id, label, classes[predicted]] + [f"{p:.6f}" for p in probs])
