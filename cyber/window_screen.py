"""Baseline screens: each channel's new value against a robust summary of its own recent values.

The baselines the paper compares with, adapted to per-channel streams (in the P2P market an agent receives
one value per quantity, not many copies of the same one, so the coordinate-wise statistics run over time):

- ``moving-average`` (after Chang et al., TSG 2022): centre = mean of the last ``w`` accepted values, spread =
  their standard deviation;
- ``trimmed-mean``: centre = mean after dropping the ``trim`` share at each end, spread = 1.4826 MAD;
- ``median``: centre = median, spread = 1.4826 MAD.

A value is flagged when it lies more than ``z_(1 - alpha/2) * spread + floor`` from the centre and is then
cleaned by the same rule as the tensor detector (:func:`cyber.screening.clean`).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from cyber.screening import Verdict, clean
from market.admm.driver import Splitting
from market.admm.states import LOCAL
from market.messages import MessageBatch

STATISTICS = ("moving-average", "trimmed-mean", "median")


class WindowScreen:
    """One ring of the last ``window`` cleaned values per channel and field."""

    def __init__(self, split: Splitting, statistic: str, *, window: int = 10, alpha: float = 0.1,
                 floor: float = 1e-5, trim: float = 0.2) -> None:
        if statistic not in STATISTICS:
            raise ValueError(f"window screen: statistic must be one of {STATISTICS}, got {statistic!r}")
        if window < 3 or not 0 < alpha < 1 or floor < 0 or not 0 <= trim < 0.5:
            raise ValueError("window screen: window >= 3, alpha in (0, 1), floor >= 0, trim in [0, 0.5)")
        self.name, self.statistic = statistic, statistic
        self.window, self.z, self.floor, self.trim = window, float(norm.ppf(1 - alpha / 2)), floor, trim
        receivers = split.channel_receivers()
        self.rings = {(kind, name): np.zeros((len(receivers[kind]), window))
                      for kind, (_, names) in split.kinds.items() for name in names}
        self.seen = {key: np.zeros(len(ring), dtype=int) for key, ring in self.rings.items()}

    def screen(self, batch: MessageBatch) -> Verdict:
        if batch.kind == LOCAL:
            return Verdict.accept(batch)
        values, flagged = {}, {}
        for name, received in batch.fields.items():
            ring, seen = self.rings[batch.kind, name], self.seen[batch.kind, name]
            rows = batch.channel
            centre, spread = self._summary(ring[rows])
            ready = seen[rows] >= self.window
            bound = np.where(ready, self.z * spread + self.floor, np.inf)
            values[name], flagged[name] = clean(received, np.where(ready, centre, received), bound)
            ring[rows, seen[rows] % self.window] = values[name]
            seen[rows] += 1
        return Verdict(values, flagged, np.zeros(len(batch), dtype=bool))

    def _summary(self, recent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.statistic == "moving-average":
            return recent.mean(axis=1), recent.std(axis=1)
        ordered = np.sort(recent, axis=1)
        median = np.median(ordered, axis=1)
        mad = 1.4826 * np.median(np.abs(recent - median[:, None]), axis=1)
        if self.statistic == "median":
            return median, mad
        cut = int(self.trim * self.window)
        return ordered[:, cut: self.window - cut].mean(axis=1), mad
