"""The sweep splitting's y-update in one sparse solve, for in-process runs whose messages nobody can touch.

The sweep (:mod:`market.admm.sweep`) projects every agent's copies onto the feeder's equalities by passing
messages leaf to root and back: ``2 x (depth - 1)`` hops, each a Python round of message batches. When the
ADMM runs in-process over the ideal transport (no network, attacker, detector or private sums: every
message arrives at once as sent), those hops compute exactly the weighted projection

    ``y = z - W^-1 A' (A W^-1 A')^-1 (A z - b)``

onto the same equalities ``A y = b``: every agent's own rows of :func:`market.admm.sweep_layout.own_equalities`
with its children's flows and voltage copies entering them, and ``w = 1`` for the agents fed by the
substation. Here that projection is one sparse factorisation per clearing (SuperLU) and two sparse products
and a solve per iteration -- tested equal to the sweep's message passing to round-off. Measured on the online
storage study (case33bw, 24 quarter hours): the sweep's hops were 64 % of the ADMM's time.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from market.admm.sweep_layout import SHARED, VARIABLES, SweepLayout, child_coefficients


class FeederProjection:
    """``y = z - W^-1 A' K^-1 (A z - b)`` with ``K = A W^-1 A'`` factorised once (vectors variable-major, ``8 n``)."""

    def __init__(self, lay: SweepLayout) -> None:
        n, k = lay.n, len(VARIABLES)
        rows, cols, vals = [], [], []

        def column(position: np.ndarray, variable: int) -> np.ndarray:
            return variable * n + lay.order[position]  # the agent at a sweep position, variable-major

        # each agent's own rows (padded rows and a battery owner's reactive row are all zero: dropped)
        own = np.abs(lay.A).sum(axis=2) > 0  # (n, rows)
        row_id = np.full(own.shape, -1)
        row_id[own] = np.arange(int(own.sum()))
        count = int(own.sum())
        pos, row, var = np.nonzero(lay.A)
        rows.append(row_id[pos, row])
        cols.append(column(pos, var))
        vals.append(lay.A[pos, row, var])
        rhs = [lay.b[own]]
        # how each child's s = (w, P, Q) enters its parent's rows (flows in the balance, w in v_child = v)
        coefficients = np.stack([child_coefficients(lay.rows, slot) for slot in lay.slot])  # (links, rows, 3)
        link, row, share = np.nonzero(coefficients)
        parent = _parent_positions(lay)
        rows.append(row_id[parent[link], row])
        cols.append(column(lay.n_top + link, np.asarray(SHARED)[share]))
        vals.append(coefficients[link, row, share])
        # the substation's voltage: w = 1 for the agents it feeds
        top = np.arange(lay.n_top)
        rows.append(count + top)
        cols.append(column(top, SHARED[0]))
        vals.append(np.ones(lay.n_top))
        rhs.append(np.ones(lay.n_top))
        count += lay.n_top
        self.A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(count, k * n))
        self.b = np.concatenate(rhs)
        self.WAt = sp.csr_matrix(self.A.T.multiply((1.0 / lay.copy_weight)[:, None]))
        self.factor = splu(sp.csc_matrix(self.A @ self.WAt))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return z - self.WAt @ self.factor.solve(self.A @ z - self.b)


def _parent_positions(lay: SweepLayout) -> np.ndarray:
    """Sweep position of the parent of each link's child (link ``c`` is the agent at position ``n_top + c``)."""
    position = np.empty(lay.n, dtype=int)
    position[lay.order] = np.arange(lay.n)
    return position[lay.link_parent]
