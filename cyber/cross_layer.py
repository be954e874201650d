"""Cross-layer detection: the market's reports against the physics the meters see, after every clearing.

A message screen only sees what agents send each other; an agent that misreports consistently from the first
iteration (or drifts inside every receiver's band) looks like an honest agent whose load differs. The grid
does not share the market's beliefs: meters read the *true* injections and flows, the ones the agents'
physical behaviour produces (here the AC power flow of the dispatch the agents actually carry out, a stand-in
for metering, with seeded measurement noise). This module names the agents whose reports cannot be reconciled
with those readings.

What the market used (local splitting, :mod:`market.admm.consensus`): for every line ``j`` the flow ``P~_j``
its *parent* holds -- the copy it balanced its own group with, i.e. what agent ``j`` reported, after the
receivers' screening -- and every agent's own squared current ``l_j``. They imply an injection per bus,
``p~_j = sum_{c child of j} P~_c - P~_j + r_j l_j`` (the DistFlow balance 1j), and the flows they imply
telescope: ``P~ = S (-p~ + r l)`` with ``S`` the subtree matrix. The unknown is the *misreport* ``d = p~ - p``
of every bus (and its reactive twin), estimated by weighted least squares from two kinds of meter:

- an injection meter at every prosumer bus: ``p~_j - m_j = d_j + noise``;
- a flow meter at the sending end of every line: ``(P~ - f) - S (r l - pl_ac) = -S d + noise``, where ``pl_ac``
  are the metered line losses (what the SOCP's ``r l`` stands for; the two agree within the relaxation gap).

The estimate ``d^`` and its covariance ``(H^T W H)^-1`` come from the meters' standard deviations
(``relative x |reading| + absolute``, :class:`Meters`). An agent is *suspected* when ``|d^_j|`` exceeds
``z sqrt(cov_jj) + slack_j`` in P or Q. The slack is what an *honest* agent's reports may differ from its
true injection in a clearing that stopped at primal residual ``eps``: with the group's balance exact on the
held copies ``y`` (the projection 6b) and the agent's own values ``x`` within the residual of them,
``p~_j - p_j = (x_P - y_Pc@parent) + (y_p - x_p) + (y_P - x_P) - r_j (y_l - x_l)``, each term at most ``eps``
over the square root of its copy's weight in the residual norm (:attr:`AdmmLayout.copy_weight`). So the
threshold is the sum of what the ADMM's stopping test allows and ``z`` standard deviations of the meters --
no tuning to a case: ``z = 5`` leaves a false accusation per bus at about 6e-7 under Gaussian meter noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.admm.consensus import LocalSplitting
from market.admm.driver import AdmmRun
from market.formulation.distflow import tree_operators
from market.instance import MarketInstance
from physical.ac_power_flow import AcPowerFlow
from physical.feeder import Feeder


@dataclass(frozen=True)
class MarketReports:
    """What the market used for every prosumer's line (p.u. of the feeder's base; per agent, bus = agent + 1):
    the flows as the parents held them, the agents' own squared currents, and the slack an honest agent's
    implied injection may have (from the ADMM's final primal residual)."""

    P: np.ndarray
    Q: np.ndarray
    l: np.ndarray
    slack_p: np.ndarray
    slack_q: np.ndarray


def market_reports(instance: MarketInstance, run: AdmmRun) -> MarketReports | None:
    """The reports of a distributed clearing with the local splitting, where every parent holds its own copy
    of its children's flows; ``None`` for the sweep, whose single copies leave nothing reported apart from the
    dispatch (and which carries no correlated attack, :func:`cyber.resilient_admm.check_projection`)."""
    split = run.split
    if not isinstance(split, LocalSplitting):
        return None
    lay, s = split.layout, run.states
    P, Q = s.x["P"].copy(), s.x["Q"].copy()  # under the substation: the agent's own (its meter is the feeder head)
    P[lay.link_child], Q[lay.link_child] = lay.seg(s.y, "Pc"), lay.seg(s.y, "Qc")
    eps = float(run.result.info.get("primal_residual", np.nan))
    w = lay.copy_weight

    def room(name: str) -> np.ndarray:
        return 1.0 / np.sqrt(lay.seg(w, name))

    held = room("P").copy()  # under the substation nobody holds a second copy: the own copy's own residual
    held[lay.link_child] = room("Pc")
    r, x = instance.feeder.r_pu[1:], instance.feeder.x_pu[1:]
    slack_p = eps * (held + room("p") + room("P") + r * room("l"))
    slack_q = eps * (held + room("q") + room("Q") + x * room("l"))
    return MarketReports(P, Q, s.x["l"].copy(), slack_p, slack_q)


@dataclass(frozen=True)
class Meters:
    """Metering of every prosumer bus (net injection) and every line's sending end (flow): standard deviation
    ``relative x |reading| + absolute_pu`` (IEC 62053-22 class 0.2S: 0.2 % at most, about 0.1 % one sigma),
    drawn from ``seed``; ``z`` standard deviations of the estimate before an agent is suspected."""

    relative: float = 1e-3
    absolute_pu: float = 1e-6
    z: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.relative < 0 or self.absolute_pu <= 0 or self.z <= 0:
            raise ValueError("meters: relative >= 0, absolute_pu > 0 and z > 0")


@dataclass(frozen=True)
class CrossLayerCheck:
    """Per agent (bus = agent + 1) the estimated misreport of its injection (p.u.), the threshold it was held
    to, and the agents whose reports the physics cannot reconcile."""

    misreport_p: np.ndarray
    misreport_q: np.ndarray
    threshold_p: np.ndarray
    threshold_q: np.ndarray
    suspected: tuple[int, ...]

    def summary(self, base_mva: float) -> dict:
        kw = base_mva * 1e3
        return {"suspected_agents": list(self.suspected),
                "max_misreport_kw": float(np.max(np.abs(self.misreport_p), initial=0.0) * kw),
                "max_misreport_kvar": float(np.max(np.abs(self.misreport_q), initial=0.0) * kw),
                "max_misreport_ratio": float(np.max(np.r_[np.abs(self.misreport_p) / self.threshold_p,
                                                          np.abs(self.misreport_q) / self.threshold_q],
                                                    initial=0.0))}


def subtree_matrix(feeder: Feeder) -> np.ndarray:
    """``S[k, i] = 1`` when bus ``i + 1`` lies in the subtree fed by line ``k + 1`` (itself included):
    ``(I - C)^-1`` with ``C`` the child-sum operator of the DistFlow balance, so that ``P = S (-p + r l)``."""
    child_sum = tree_operators(feeder).child_sum.toarray()
    return np.linalg.inv(np.eye(len(child_sum)) - child_sum).round()


def implied_injections(feeder: Feeder, flows: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """The injections a set of line flows implies by the DistFlow balance (1j): ``p = C P - P + r l``."""
    return tree_operators(feeder).child_sum @ flows - flows + losses


def check_reports(feeder: Feeder, reports: MarketReports, ac: AcPowerFlow, meters: Meters,
                  outside: tuple[np.ndarray, np.ndarray] | None = None) -> CrossLayerCheck:
    """Estimate every agent's misreport from the metered AC state and name those beyond the threshold.

    ``outside``: the active and reactive injections per bus (MW, MVar) of loads and generators outside the
    market that the AC state carries (e.g. an external simulator's household). They have meters of their own:
    a bus's prosumer meter reads the bus's injection less theirs, and every line's flow carries them, so they
    come off the flow readings through the subtree matrix and are not taken for an agent's misreport."""
    rng = np.random.default_rng(meters.seed)
    base = feeder.base_mva
    S = subtree_matrix(feeder)
    metered = ~np.isnan(ac.line_p_from_mw[1:])  # a closed switch carries no line meter
    r, x = feeder.r_pu[1:], feeder.x_pu[1:]
    n = feeder.n_buses
    other_p, other_q = outside if outside is not None else (np.zeros(n), np.zeros(n))
    estimates = []
    for reported, own_loss, injection, flow, loss, slack, other in (
            (reports.P, r * reports.l, ac.bus_p_mw, ac.line_p_from_mw, ac.line_pl_mw, reports.slack_p, other_p),
            (reports.Q, x * reports.l, ac.bus_q_mvar, ac.line_q_from_mvar, ac.line_ql_mvar, reports.slack_q,
             other_q)):
        implied = implied_injections(feeder, reported, own_loss)
        true_inj, true_flow, apart = (injection[1:] - other[1:]) / base, flow[1:] / base, other[1:] / base
        sd_inj = meters.relative * np.abs(true_inj) + meters.absolute_pu
        sd_flow = meters.relative * np.abs(np.nan_to_num(true_flow)) + meters.absolute_pu
        read_inj = true_inj + rng.normal(0.0, sd_inj)
        read_flow = true_flow + rng.normal(0.0, sd_flow)
        z = np.r_[implied - read_inj,
                  (reported - read_flow - S @ (own_loss - loss[1:] / base + apart))[metered]]
        H = np.vstack([np.eye(len(S)), -S[metered]])
        weight = 1.0 / np.r_[sd_inj, sd_flow[metered]] ** 2
        normal = H.T @ (weight[:, None] * H)
        cov = np.linalg.inv(normal)
        d = cov @ (H.T @ (weight * z))
        estimates.append((d, meters.z * np.sqrt(np.diag(cov)) + slack))
    (dp, bound_p), (dq, bound_q) = estimates
    suspected = np.flatnonzero((np.abs(dp) > bound_p) | (np.abs(dq) > bound_q)) + 1
    return CrossLayerCheck(dp, dq, bound_p, bound_q, tuple(int(b) for b in suspected))


def meters_of(instance: MarketInstance) -> Meters:
    """The default meters of one quarter hour, their noise drawn from the instance's seed and interval."""
    return Meters(seed=instance.seed * 100_003 + instance.interval)


def cross_layer_check(instance: MarketInstance, run: AdmmRun, ac: AcPowerFlow,
                      meters: Meters | None = None) -> CrossLayerCheck | None:
    """The check of one distributed clearing (``None`` when its splitting reports nothing beyond the
    dispatch, see :func:`market_reports`)."""
    reports = market_reports(instance, run)
    if reports is None:
        return None
    return check_reports(instance.feeder, reports, ac, meters or meters_of(instance))
