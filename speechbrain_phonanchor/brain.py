"""``PhonAnchorBrain``: AGA-CL training with SpeechBrain's ``Brain``.

Training batches are :class:`~speechbrain_phonanchor.data.PairedBatch` es
(labelled source utterances, each with an unlabelled target partner);
validation and test batches are :class:`~speechbrain_phonanchor.data.SegmentBatch` es.

Per training batch:

1. source frames attend to their partner's frames (paired mode), target frames
   attend to the prototype bank (the mode they will have at test time);
2. ``L_emo`` = cross-entropy of the source logits;
3. when ``adapt_weight > 0`` and the adaptation gate is open
   (:class:`~speechbrain_phonanchor.model.schedule.AdaptationSchedule`, ``hparams.adaptation_schedule``:
   enough epochs, optimiser steps and source-valid UAR), the pseudo-labeler turns the target
   logits into target classes (``-1`` = none; or the analysis-subset labels), with the
   pseudo-labelled share growing over the ramp; the collapse guard
   (:func:`~speechbrain_phonanchor.model.pseudo_labels.collapse_guard`, ``hparams.collapse_share``)
   drops the labels that would give one class more than that share of the epoch's labels;
   ``L_adapt`` = the vowel triplet loss between target and source segment embeddings (the mean
   over all valid triplets of the batch);
4. ``L = L_emo + w · adapt_weight · L_adapt`` with ``w`` the ramp's weight in [0, 1]; with
   ``hparams.adapt_cap > 0`` the adaptation term is scaled down (as a constant factor) in a batch
   where it exceeds ``adapt_cap · L_emo``, so it cannot swamp the emotion loss;
5. DANN (when ``modules`` holds a ``discriminator`` and ``hparams.dann_weight > 0``):
   a :class:`~speechbrain_phonanchor.model.dann.DomainDiscriminator` classifies the
   utterance embeddings of the source (0) and target (1) halves of the batch
   behind gradient reversal, ``L += dann_weight · L_domain``.  The reversal
   strength follows the DANN schedule over training progress
   ``p = (epoch − 1 + step / steps_per_epoch) / epoch_counter.limit``.

Adaptation diagnostics, per training epoch (in ``train_stats``, so in ``train_log`` and the
logger, and in :attr:`PhonAnchorBrain.adaptation_history`, which train.py writes to
``metrics.json``): ``target_seen`` / ``target_pseudo_labelled`` (target utterances that went
through the labeler / got a class), ``target_labelled`` (their ratio),
``target_pseudo_classes`` (class histogram, ``neu=3 hap=0 ...``), ``triplets`` (valid
triplets formed, summed over batches) and ``empty_triplet_batches`` (batches without any),
``triplets_per_batch``, ``collapse_dropped`` (labels the guard dropped), ``capped_batches``
(batches whose adaptation term the cap scaled down), ``adapt_to_emo`` (mean ratio of the
weighted adaptation term to ``L_emo``), ``adapt_weight_factor`` (the ramp's ``w`` at the epoch's
end) and ``pseudo_fraction``.  Each epoch's pseudo-labels (utterance, class, probability) go
to ``hparams.pseudo_label_folder/epoch_NNN.csv`` when that is set, for scoring after training.

**Checkpoint selection and early stopping.**  Checkpoints are kept and chosen by
``selection_uar`` (in their meta): the source-valid UAR, minus 1 for epochs of an anchored run
before its gate opened when ``hparams.select_adapted`` is True, so an anchored run is evaluated
on a model that was anchored; when the gate opens, the early stopper's patience restarts.
In DDP each process counts its own batches.  The history of epochs already trained travels
in the checkpoint's meta, so a resumed run reports every epoch.

Every training epoch reseeds torch with ``seed + epoch`` and redraws the pairs (and the
batches of a ``batch_sampler`` in ``train_loader_kwargs`` that has ``set_epoch``),
so an interrupted and resumed run repeats the uninterrupted one.  Validation
(source) computes UAR (balanced accuracy) for early stopping and checkpoint
selection; test (target) also writes per-utterance predictions to
``hparams.predictions_file``.

Hyperparameters read from ``hparams``: ``seed``, ``adapt_weight``,
``adapt_loss``, ``pseudo_labeler``, ``epoch_counter``, ``train_logger``,
``predictions_file``, ``classes`` and, optionally, ``dann_weight`` (default 0).
Modules: ``model`` (a :class:`~speechbrain_phonanchor.model.PhonAnchorNet`) and,
for DANN, ``discriminator``.

Example
-------
>>> uar([0, 1, 1], [0, 1, 0])
0.75
"""

import csv
import logging
import math
import pathlib

import speechbrain as sb
import torch
from sklearn.metrics import balanced_accuracy_score
from speechbrain.utils.distributed import if_main_process

from speechbrain_phonanchor.fileio import atomic_open
from speechbrain_phonanchor.model.dann import reversal_strength
from speechbrain_phonanchor.model.pseudo_labels import collapse_guard
from speechbrain_phonanchor.model.schedule import AdaptationSchedule

logger = logging.getLogger(__name__)


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
        loader_kwargs = kwargs.get("train_loader_kwargs", {})
        self.batch_sampler = loader_kwargs.get("batch_sampler")
        if self.batch_sampler is not None:
            self.steps_per_epoch = max(1, len(self.batch_sampler))
        else:
            self.steps_per_epoch = max(1, math.ceil(len(train_set) / loader_kwargs.get("batch_size", 1)))
        return super().fit(epoch_counter, train_set, *args, **kwargs)

    def on_fit_start(self):
        """As ``Brain.on_fit_start``; then takes the adaptation history and gate of the recovered checkpoint."""
        super().on_fit_start()
        self.adaptation_history = []
        self.last_valid_uar = None
        if self.checkpointer is not None:
            latest = self.checkpointer.find_checkpoint()  # the most recent one, the one recovered
            if latest is not None:
                self.adaptation_history = list(latest.meta.get("adaptation", []))
                self.last_valid_uar = latest.meta.get("UAR")
                self.schedule.load_state(latest.meta.get("gate"))

    @property
    def schedule(self):
        """The adaptation gate and ramp (``hparams.adaptation_schedule``; default: the paper's epoch warm-up)."""
        if getattr(self, "_schedule", None) is None:
            self._schedule = getattr(self.hparams, "adaptation_schedule", None) or AdaptationSchedule(
                warmup_epochs=self.hparams.pseudo_labeler.warmup_epochs)
        return self._schedule

    @property
    def anchoring(self):
        """True when the run trains with the triplet loss."""
        return self.hparams.adapt_weight > 0

    def selection_uar(self, valid_uar):
        """The checkpoint-selection key: ``valid_uar``, minus 1 before the gate of an anchored run opened
        (with ``select_adapted``), so any anchored epoch is preferred."""
        early = self.anchoring and getattr(self.hparams, "select_adapted", False) and not self.schedule.is_open
        return valid_uar - 1.0 if early else valid_uar

    def _open_gate(self, epoch):
        """Check the gate at the start of a training epoch; when it opens, log it and restart the patience."""
        was_open = self.schedule.is_open
        if self.schedule.update(epoch, self.optimizer_step, self.last_valid_uar) and not was_open:
            logger.info("epoch %d: adaptation starts (step %d, last source-valid UAR %s)", epoch,
                        self.optimizer_step, self.last_valid_uar)
            counter = self.hparams.epoch_counter
            if getattr(self.hparams, "select_adapted", False) and hasattr(counter, "best_limit"):
                counter.best_limit, counter.best_score = epoch - 1, counter.sign * float("inf")

    @property
    def dann(self):
        """True when the domain-adversarial loss is on (a ``discriminator`` module and ``dann_weight > 0``)."""
        return "discriminator" in self.modules and getattr(self.hparams, "dann_weight", 0) > 0

    def training_progress(self):
        """Fraction of the epoch limit done, in [0, 1]: the DANN reversal schedule's ``p``."""
        steps = getattr(self, "steps_per_epoch", 1)
        done = (self.epoch - 1) + min(max(self.step - 1, 0), steps) / steps
        return min(1.0, done / max(self.hparams.epoch_counter.limit, 1))

    def domain_loss(self, source_out, target_out, progress):
        """Cross-entropy of the discriminator on source (0) and target (1) utterance embeddings.

        The discriminator sits behind gradient reversal, so minimising this loss trains the
        discriminator and pushes the network towards domain-invariant embeddings.
        """
        embeddings = torch.cat([source_out.utterance_embeddings, target_out.utterance_embeddings])
        domains = torch.cat([torch.zeros(len(source_out.utterance_embeddings), dtype=torch.long),
                             torch.ones(len(target_out.utterance_embeddings), dtype=torch.long)]).to(embeddings.device)
        logits = self.modules.discriminator(embeddings, progress)
        self.domain_correct += (logits.argmax(-1) == domains).sum().detach()
        self.domain_seen += len(domains)
        self.domain_batches += 1
        return torch.nn.functional.cross_entropy(logits, domains)

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
        if self.hparams.adapt_weight > 0 or self.dann:
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
        if self.dann:
            domain = self.domain_loss(out, target_out, self.training_progress())
            self.domain_loss_sum += domain.detach()
            loss = loss + self.hparams.dann_weight * domain
        if target_out is not None and self.anchoring:
            target_labels = self.target_labels(target_out.logits, batch.target)
            adapt = self.hparams.adapt_loss(
                target_out.segment_embeddings, batch.target.vowels, batch.target.segment_mask, target_labels,
                out.segment_embeddings, batch.source.vowels, batch.source.segment_mask, batch.source.labels,
            )
            self.adapt_loss_sum += adapt.detach()
            self.n_triplets += self.hparams.adapt_loss.last_n_triplets
            term = self.hparams.adapt_weight * self.schedule.weight(self.optimizer_step) * adapt
            cap = getattr(self.hparams, "adapt_cap", 0) or 0
            if cap > 0 and float(term) > cap * float(loss):
                term = term * (cap * float(loss) / float(term))
                self.capped_batches += 1
            self.adapt_ratio_sum += float(term) / max(float(loss), 1e-12)
            loss = loss + term
        return loss

    def target_labels(self, logits, target):
        """The classes of a target batch for the triplet loss: ``-1`` everywhere while the gate is closed;
        else the labeler's (with the curriculum's share), through the collapse guard; counted and recorded."""
        labeler = self.hparams.pseudo_labeler
        if not self.schedule.is_open:
            labeler.n_seen += len(logits)
            return torch.full(logits.shape[:1], -1, dtype=torch.long, device=logits.device)
        fraction = self.schedule.fraction(self.optimizer_step)
        if fraction is not None:
            labeler.fraction = fraction
        labels = labeler(logits, self.epoch, target.labels)
        probabilities = torch.softmax(logits.detach().float(), dim=-1)
        if labeler.source == "pseudo":
            labels, dropped = collapse_guard(labels, probabilities, self.pseudo_counts,
                                             getattr(self.hparams, "collapse_share", 1.0))
            self.collapse_dropped += dropped
            labeler.n_labelled -= dropped
        kept = labels[labels >= 0].detach().cpu()
        self.pseudo_counts += torch.bincount(kept, minlength=len(self.pseudo_counts))[:len(self.pseudo_counts)]
        for index in torch.nonzero(labels >= 0).flatten().tolist():
            cls = int(labels[index])
            self.pseudo_rows.append((target.ids[index], cls, float(probabilities[index, cls])))
        return labels

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
        self.domain_loss_sum = torch.zeros((), device=self.device)
        self.domain_correct = torch.zeros((), device=self.device, dtype=torch.long)
        self.domain_seen = self.domain_batches = 0
        if stage == sb.Stage.TRAIN:
            self.epoch = epoch
            torch.manual_seed(self.hparams.seed + epoch)
            if hasattr(self.paired_set, "set_epoch"):
                self.paired_set.set_epoch(epoch)
            if hasattr(getattr(self, "batch_sampler", None), "set_epoch"):
                self.batch_sampler.set_epoch(epoch)
            self.adapt_start = (self.hparams.adapt_loss.n_batches, self.hparams.adapt_loss.n_empty_batches)
            self.n_triplets = self.collapse_dropped = self.capped_batches = 0
            self.adapt_ratio_sum = 0.0
            self.pseudo_rows = []
            self.pseudo_counts = torch.zeros(len(self.hparams.classes), dtype=torch.long)
            if self.anchoring:
                self._open_gate(epoch)
            self.labeler_start = (self.hparams.pseudo_labeler.n_seen, self.hparams.pseudo_labeler.n_labelled)

    def _train_stats(self, loss):
        steps = max(self.hparams.adapt_loss.n_batches - self.adapt_start[0], 1)
        stats = {"loss": loss}
        if self.hparams.adapt_weight > 0:
            seen = self.hparams.pseudo_labeler.n_seen - self.labeler_start[0]
            labelled = self.hparams.pseudo_labeler.n_labelled - self.labeler_start[1]
            stats["adapt_loss"] = float(self.adapt_loss_sum) / steps
            stats["target_seen"] = seen
            stats["target_pseudo_labelled"] = labelled
            stats["target_labelled"] = labelled / max(seen, 1)
            stats["target_pseudo_classes"] = " ".join(
                f"{label}={int(count)}" for label, count in zip(self.hparams.classes, self.pseudo_counts))
            stats["triplets"] = self.n_triplets
            stats["adapt_batches"] = self.hparams.adapt_loss.n_batches - self.adapt_start[0]
            stats["empty_triplet_batches"] = self.hparams.adapt_loss.n_empty_batches - self.adapt_start[1]
            stats["triplets_per_batch"] = self.n_triplets / steps
            stats["collapse_dropped"] = self.collapse_dropped
            stats["capped_batches"] = self.capped_batches
            stats["adapt_to_emo"] = self.adapt_ratio_sum / steps
            stats["adapt_weight_factor"] = self.schedule.weight(self.optimizer_step)
            stats["pseudo_fraction"] = self.hparams.pseudo_labeler.fraction
        if self.dann:
            stats["domain_loss"] = float(self.domain_loss_sum) / max(self.domain_batches, 1)
            stats["domain_accuracy"] = float(self.domain_correct) / max(self.domain_seen, 1)
            stats["reversal_strength"] = reversal_strength(self.training_progress(),
                                                           self.modules.discriminator.gamma)
        return stats

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Keep the stage's stats in ``last_stats``; after validation log them, step the early stopper and
        save a checkpoint; after test write the predictions (train.py logs the test stats)."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = self._train_stats(stage_loss)
            if self.anchoring:
                self._record_adaptation(epoch)
                if self.schedule.is_open:
                    self._write_pseudo_labels(epoch)
            return
        predictions = [max(range(len(p)), key=p.__getitem__) for p in self.probabilities]
        stats = {"loss": stage_loss, "UAR": uar(self.targets, predictions)}
        if stage == sb.Stage.VALID:
            self.last_valid_uar = stats["UAR"]
            self.hparams.epoch_counter.update_metric(stats["UAR"])
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch}, train_stats=self.train_stats, valid_stats=stats
            )
            self.checkpointer.save_and_keep_only(
                meta={"UAR": stats["UAR"], "selection_uar": self.selection_uar(stats["UAR"]), "epoch": epoch,
                      "adaptation": self.adaptation_history, "gate": self.schedule.state()},
                max_keys=["selection_uar"])
        elif if_main_process():
            self.write_predictions(predictions)
        self.last_stats = stats

    def _record_adaptation(self, epoch):
        """Log this epoch's adaptation counts and append them to ``adaptation_history``."""
        stats = self.train_stats
        record = {"epoch": epoch, "active": self.schedule.is_open,
                  "target_seen": stats["target_seen"], "target_pseudo_labelled": stats["target_pseudo_labelled"],
                  "target_pseudo_classes": {label: int(count)
                                            for label, count in zip(self.hparams.classes, self.pseudo_counts)},
                  "triplets": stats["triplets"], "adapt_batches": stats["adapt_batches"],
                  "empty_triplet_batches": stats["empty_triplet_batches"], "adapt_loss": stats["adapt_loss"],
                  **{key: stats[key] for key in ("triplets_per_batch", "collapse_dropped", "capped_batches",
                                                 "adapt_to_emo", "adapt_weight_factor", "pseudo_fraction")}}
        history = getattr(self, "adaptation_history", [])
        self.adaptation_history = [r for r in history if r["epoch"] != epoch] + [record]
        logger.info("epoch %d adaptation: %d/%d target utterances pseudo-labelled (%s), %d triplets, "
                    "%d/%d batches without a triplet%s", epoch, stats["target_pseudo_labelled"],
                    stats["target_seen"], stats["target_pseudo_classes"], stats["triplets"],
                    stats["empty_triplet_batches"], stats["adapt_batches"],
                    "" if record["active"] else " (warm-up)")

    def _write_pseudo_labels(self, epoch):
        """Write this epoch's pseudo-labels to ``<pseudo_label_folder>/epoch_NNN.csv`` (``id, label, probability``)."""
        folder = getattr(self.hparams, "pseudo_label_folder", None)
        if not folder or not if_main_process():
            return
        pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
        classes = list(self.hparams.classes)
        with atomic_open(pathlib.Path(folder) / f"epoch_{epoch:03d}.csv", "w") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["id", "pseudo_label", "probability"])
            for utt_id, cls, probability in self.pseudo_rows:
                writer.writerow([utt_id, classes[cls], f"{probability:.6f}"])

    def write_predictions(self, predictions):
        """Write ``id, label, prediction, p_<class>...`` per test utterance to ``hparams.predictions_file``."""
        classes = list(self.hparams.classes)
        with atomic_open(self.hparams.predictions_file, "w") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["id", "label", "prediction"] + [f"p_{c}" for c in classes])
            for utt_id, target, predicted, probs in zip(self.ids, self.targets, predictions, self.probabilities):
                label = classes[target] if target >= 0 else ""
                writer.writerow([utt_id, label, classes[predicted]] + [f"{p:.6f}" for p in probs])
