"""SOCP-relaxed DistFlow (branch-flow) constraints as functions of plain arrays and cvxpy expressions.

Line ``j`` ends at bus ``j`` (parent ``A(j)``); vectors hold one entry per line/agent ``1..n`` (position
``j - 1``). The constraints are the paper's (1j)-(1m), i.e. Baran-Wu DistFlow with losses and the
second-order-cone relaxation of Farivar & Low (2013); the relaxation is exact on radial networks under mild
conditions (Gan, Li, Topcu & Low, IEEE TAC 2015) provided losses carry a positive price.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from physical.feeder import Feeder


@dataclass(frozen=True, eq=False)
class TreeOperators:
    """Linear maps of a radial feeder on line/agent vectors (length ``n`` = buses - 1)."""

    child_sum: sp.csr_matrix  # (C x)[j] = sum of x_k over the children k of bus j
    root_sum: np.ndarray  # 0/1 row: sum over lines leaving the substation
    parent: np.ndarray  # parent bus (0..n) of each line
    r: np.ndarray
    x: np.ndarray


def tree_operators(feeder: Feeder) -> TreeOperators:
    n = feeder.n_buses - 1
    lines = np.arange(1, feeder.n_buses)
    parent = feeder.parent[lines]
    below_root = parent > 0
    child_sum = sp.csr_matrix((np.ones(below_root.sum()), (parent[below_root] - 1, lines[below_root] - 1)),
                              shape=(n, n))
    return TreeOperators(child_sum, (parent == 0).astype(float), parent, feeder.r_pu[lines].copy(),
                         feeder.x_pu[lines].copy())


def parent_voltage(ops: TreeOperators, v: cp.Expression) -> cp.Expression:
    """Squared voltage at each line's sending end, with ``v_0 = 1`` at the substation."""
    v_all = cp.hstack([np.ones(1), v])
    return v_all[ops.parent]


def constraint_power_balance(ops: TreeOperators, p, q, P, Q, l) -> list[cp.Constraint]:
    """(1j)-(1k): ``p_j + P_j - r_j l_j = sum_{k in C(j)} P_k`` and the reactive twin."""
    return [p + P - cp.multiply(ops.r, l) == ops.child_sum @ P,
            q + Q - cp.multiply(ops.x, l) == ops.child_sum @ Q]


def constraint_voltage_drop(ops: TreeOperators, v, P, Q, l) -> list[cp.Constraint]:
    """(1l): ``v_j = v_i - 2 (r_j P_j + x_j Q_j) + (r_j^2 + x_j^2) l_j``."""
    z2 = ops.r**2 + ops.x**2
    return [v == parent_voltage(ops, v) - 2 * (cp.multiply(ops.r, P) + cp.multiply(ops.x, Q))
            + cp.multiply(z2, l)]


def constraint_soc(ops: TreeOperators, v, P, Q, l) -> list[cp.Constraint]:
    """(1m): ``P_j^2 + Q_j^2 <= v_i l_j`` written as ``||(2P, 2Q, v_i - l)|| <= v_i + l``."""
    vi = parent_voltage(ops, v)
    return [cp.SOC(vi + l, cp.vstack([2 * P, 2 * Q, vi - l]), axis=0)]


def constraint_limits(v, l, vmin2, vmax2, lmax: np.ndarray) -> list[cp.Constraint]:
    """Voltage box on ``v`` (bounds given squared) and the thermal limit ``l <= lmax`` on rated lines."""
    cons = [v >= vmin2, v <= vmax2, l >= 0]
    rated = np.isfinite(lmax)
    if rated.any():
        cons.append(l[np.flatnonzero(rated)] <= lmax[rated])
    return cons


def relaxation_gap(v_parent: np.ndarray, P: np.ndarray, Q: np.ndarray, l: np.ndarray) -> np.ndarray:
    """``v_i l_j - P_j^2 - Q_j^2`` per line: zero where the relaxation is exact."""
    return v_parent * l - P**2 - Q**2
