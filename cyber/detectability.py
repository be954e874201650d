"""Which injections any message screen could have caught: an oracle that knows the honest history.

A detector's TPR mixes two things: how good its forecast is, and how visible the injections are at all. A
dynamic-noise draw smaller than the market's own iteration-to-iteration moves is invisible to every screen
that sees one message stream, and a correlated flow draw moves the voltage it implies by only
``2 (r dP + x dQ)``. To score the detector on what can be seen, the oracle here predicts every corrupted
field from the *honest* values its channel carried before (which no real receiver has: it received the
injections too), by linear extrapolation ``2 h[k-1] - h[k-2]``, and calls the injection *detectable* when the
value sent lies further from that prediction than the detector's own rule allows: ``z_(1 - alpha/2)`` times
the robust scale (1.4826 x median) of the predictor's last nine absolute errors on the honest history, plus the
detectors' floor of 1e-5 p.u. ``tpr_detectable`` is the detector's TPR on these injections.

:class:`HonestHistory` is a transport placed before the attackers: it keeps what every channel would have
carried, then hands the batch on unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from cyber.screening import BAND_FLOOR, BAND_MEMORY, KEY, MAD_SCALE
from market.messages import MessageBatch, Transport

#: Fewest errors the oracle scales with: before that, no injection counts as detectable.
MIN_ERRORS = 3


class HonestHistory:
    """Records the honest value of every field on every channel per iteration, then delivers through ``inner``."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self._rows: dict[tuple[str, str], list[tuple[int, np.ndarray, np.ndarray]]] = {}

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        for name, values in batch.fields.items():
            self._rows.setdefault((batch.kind, name), []).append((batch.iteration, batch.channel, values))
        return self.inner.deliver(batch)

    def series(self, kind: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Iterations (sorted) and an (iterations, channels) table of honest values, NaN where nothing was sent."""
        rows = self._rows.get((kind, name), [])
        if not rows:
            return np.zeros(0, dtype=int), np.zeros((0, 0))
        iterations = np.unique([it for it, _, _ in rows])
        table = np.full((len(iterations), 1 + max(int(ch.max()) for _, ch, _ in rows if ch.size)), np.nan)
        for it, channel, values in rows:
            table[np.searchsorted(iterations, it), channel] = values
        return iterations, table


def oracle_flags(truth: pd.DataFrame, history: HonestHistory, alpha: float) -> np.ndarray:
    """Per row of ``truth`` (the attackers' record: iteration, kind, field, channel, sent), whether the oracle
    with the honest history flags it at nominal false-alarm rate ``alpha``."""
    z = float(norm.ppf(1 - alpha / 2))
    out = np.zeros(len(truth), dtype=bool)
    for (kind, name), rows in truth.groupby(["kind", "field"]).groups.items():
        iterations, table = history.series(str(kind), str(name))
        for row in rows:
            record = truth.loc[row]
            before = table[: np.searchsorted(iterations, int(record["iteration"])), int(record["channel"])]
            honest = before[np.isfinite(before)]
            if honest.size < MIN_ERRORS + 2:
                continue
            predicted = 2.0 * honest[1:-1] - honest[:-2]  # each value's prediction from the two before it
            errors = np.abs(honest[2:] - predicted)[-BAND_MEMORY:]
            scale = MAD_SCALE * float(np.median(errors))
            estimate = 2.0 * honest[-1] - honest[-2]
            out[truth.index.get_loc(row)] = abs(float(record["sent"]) - estimate) > z * scale + BAND_FLOOR
    return out


def detected_of_detectable(flags: pd.DataFrame, truth: pd.DataFrame) -> tuple[int, int]:
    """How many of the injections the oracle flags (``truth["detectable"]``) the detectors flagged, of how many."""
    if "detectable" not in truth or not truth["detectable"].any():
        return 0, 0
    seen = truth.loc[truth["detectable"].to_numpy(dtype=bool), KEY].drop_duplicates()
    hit = seen.merge(flags[KEY].drop_duplicates().assign(hit=True), on=KEY, how="left")["hit"].eq(True)
    return int(hit.sum()), len(seen)
