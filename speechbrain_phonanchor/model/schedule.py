"""When anchoring starts and how strongly: a gate on what the source model has learned, then a ramp.

The paper switches the triplet loss on at full weight after a fixed number of warm-up
epochs.  On a small corpus (4 optimiser steps per epoch) that is a dozen steps: the
classifier still predicts one class, every pseudo-label goes to it, and the triplet loss
locks the collapse in.  :class:`AdaptationSchedule` counts in what the model has learned:

- the **gate** opens at the start of the first training epoch for which all of these hold
  (and stays open): at least ``warmup_epochs`` epochs done, at least ``min_steps``
  optimiser steps done, and the last source-validation UAR at least ``min_uar`` (``None``:
  no condition).  ``min_steps=0, min_uar=None`` is the paper's epoch warm-up;
- the **ramp**: over the ``ramp_steps`` optimiser steps after the gate, the adaptation weight
  grows as in DANN, ``2 / (1 + exp(-10 p)) - 1`` (1 at the end) with ``p`` the share of the ramp done, and
  the share of each target batch that gets a pseudo-label grows linearly from
  ``fraction_start`` to ``fraction_end`` (a class-balanced curriculum as in CBST, Zou et al.,
  ECCV 2018).  ``ramp_steps=0``: full weight and ``fraction_end`` at once.

The state (when the gate opened) travels in the checkpoint's meta, so a resumed run keeps it.

Example
-------
>>> schedule = AdaptationSchedule(warmup_epochs=2, min_steps=10, min_uar=0.4, ramp_steps=100,
...                               fraction_start=0.2, fraction_end=0.5)
>>> schedule.update(epoch=3, steps=12, valid_uar=0.31)   # learned too little
False
>>> schedule.update(epoch=4, steps=16, valid_uar=0.45)
True
>>> schedule.weight(16), round(schedule.weight(66), 3), schedule.weight(500)
(0.0, 0.987, 1.0)
>>> schedule.fraction(16), schedule.fraction(66), schedule.fraction(116)
(0.2, 0.35, 0.5)
"""

import math


class AdaptationSchedule:
    """The gate and ramp of the adaptation loss (see the module docstring).

    Arguments
    ---------
    warmup_epochs : int
        Epochs that must be done before the gate may open.
    min_steps : int
        Optimiser steps that must be done before the gate may open.
    min_uar : float, optional
        Source-validation UAR the last validation must reach; None: no condition.
    ramp_steps : int
        Optimiser steps over which the weight ramps up and the pseudo-labelled share grows.
    fraction_start, fraction_end : float, optional
        Pseudo-labelled share at the gate and after the ramp; None: the labeler's own, constant.
    """

    def __init__(self, warmup_epochs=3, min_steps=0, min_uar=None, ramp_steps=0, fraction_start=None,
                 fraction_end=None):
        if min(warmup_epochs, min_steps, ramp_steps) < 0:
            raise ValueError("warmup_epochs, min_steps and ramp_steps must be >= 0")
        self.warmup_epochs = int(warmup_epochs)
        self.min_steps = int(min_steps)
        self.min_uar = None if min_uar is None else float(min_uar)
        self.ramp_steps = int(ramp_steps)
        self.fraction_start = fraction_start
        self.fraction_end = fraction_end
        self.opened_epoch = None
        self.opened_step = None

    @property
    def is_open(self):
        """True once the gate has opened."""
        return self.opened_epoch is not None

    def update(self, epoch, steps, valid_uar):
        """Open the gate at the start of ``epoch`` if its conditions hold; return whether it is open.

        Arguments
        ---------
        epoch : int
            The epoch about to start (1-based).
        steps : int
            Optimiser steps done so far.
        valid_uar : float or None
            The last source-validation UAR (None before the first validation).
        """
        if not self.is_open:
            learned = self.min_uar is None or (valid_uar is not None and valid_uar >= self.min_uar)
            if epoch > self.warmup_epochs and steps >= self.min_steps and learned:
                self.opened_epoch, self.opened_step = int(epoch), int(steps)
        return self.is_open

    def progress(self, steps):
        """Share of the ramp done at ``steps`` (0 while closed, 1 without a ramp)."""
        if not self.is_open:
            return 0.0
        if self.ramp_steps == 0:
            return 1.0
        return min(1.0, max(0.0, (steps - self.opened_step) / self.ramp_steps))

    def weight(self, steps):
        """Multiplier of the adaptation weight at ``steps``, in [0, 1] (DANN's schedule over the ramp)."""
        if not self.is_open:
            return 0.0
        progress = self.progress(steps)
        return 1.0 if progress >= 1.0 else 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0

    def fraction(self, steps):
        """Pseudo-labelled share at ``steps`` (None when no curriculum is set)."""
        if self.fraction_start is None or self.fraction_end is None:
            return self.fraction_end
        return round(self.fraction_start + (self.fraction_end - self.fraction_start) * self.progress(steps), 6)

    def state(self):
        """What a checkpoint keeps: when the gate opened."""
        return {"opened_epoch": self.opened_epoch, "opened_step": self.opened_step}

    def load_state(self, state):
        """Restore :meth:`state` (a missing or empty state leaves the gate closed)."""
        state = state or {}
        self.opened_epoch, self.opened_step = state.get("opened_epoch"), state.get("opened_step")

    def describe(self):
        """One line for logs."""
        uar = "no UAR condition" if self.min_uar is None else f"source-valid UAR >= {self.min_uar:.2f}"
        return (f"adaptation starts after >= {self.warmup_epochs} epochs, >= {self.min_steps} steps and {uar}; "
                f"ramp over {self.ramp_steps} steps")
