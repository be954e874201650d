"""Figures of a co-simulation run, as PNG bytes for the results folder (matplotlib, no screen needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _labelled(fig, ax, xlabel: str, ylabel: str) -> bytes:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return png(fig)


def residuals(iterations: pd.DataFrame) -> bytes:
    """Primal and dual residuals over the ADMM iterations, one line per interval (at most 8 shown)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for interval, g in list(iterations.groupby("interval"))[:8]:
        ax.semilogy(g["iteration"], g["primal_residual"], label=f"primal, interval {interval}")
        ax.semilogy(g["iteration"], g["dual_residual"], "--", label=f"dual, interval {interval}")
    return _labelled(fig, ax, "ADMM iteration", "residual (p.u., penalty metric)")


def voltage_profile(voltages: pd.DataFrame) -> bytes:
    """SOCP against AC voltage magnitudes per bus for the first and the last interval."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    shown = sorted(voltages["interval"].unique())
    for interval in dict.fromkeys([shown[0], shown[-1]]):
        g = voltages[voltages["interval"] == interval]
        ax.plot(g["bus"], g["vm_ac_pu"], "o-", ms=3, label=f"AC, interval {interval}")
        ax.plot(g["bus"], g["vm_socp_pu"], "x", label=f"SOCP, interval {interval}")
    return _labelled(fig, ax, "bus", "|V| (p.u.)")


def detections(iterations: pd.DataFrame) -> bytes:
    """Corrupted and flagged message fields per ADMM iteration (summed over the intervals)."""
    per = iterations.groupby("iteration")[["attacked", "flagged"]].sum()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(per.index, per["attacked"], ".", ms=3, label="corrupted by attackers")
    ax.plot(per.index, per["flagged"], ".", ms=2, alpha=0.6, label="flagged by detectors")
    return _labelled(fig, ax, "ADMM iteration", "message fields")


def clearing_time(table: pd.DataFrame, x: str, xlabel: str, by: tuple[str, ...] = ("loss",)) -> bytes:
    """Simulated clearing time (and, on the right axis, optimality gap) against ``x``; a line per ``by``."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    right = ax.twinx()
    keys = [c for c in by if c in table and c != x]
    groups = table.groupby(keys) if keys else [((), table)]
    for key, g in groups:
        values = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{k} {v}" for k, v in zip(keys, values, strict=True))
        g = g.sort_values(x)
        ax.plot(g[x], g["clearing_ms"] / 1e3, "o-", label=f"clearing time {label}")
        if "optimality_gap" in g:
            right.semilogy(g[x], g["optimality_gap"].clip(lower=1e-12), "x--", label=f"gap {label}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("simulated clearing time (s)")
    right.set_ylabel("optimality gap")
    ax.legend(loc="upper left", fontsize=6)
    if right.get_lines():
        right.legend(loc="upper right", fontsize=6)
    return png(fig)


def soc_trajectories(soc: pd.DataFrame, soc_min: object, soc_max: object) -> bytes:
    """Stored energy of every unit (at most 12 shown) as a share of its window, over the intervals."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for unit, g in list(soc.groupby("unit"))[:12]:
        lo, hi = soc_min[unit], soc_max[unit]
        ax.plot(g["interval"], (g["soc_kwh"] - lo) / (hi - lo), lw=1, label=f"bus {g['bus'].iloc[0]}")
    ax.axhline(0, color="k", lw=0.5)
    ax.axhline(1, color="k", lw=0.5)
    return _labelled(fig, ax, "interval", "SoC within its window (0 = min, 1 = max)")


def cumulative_cost(intervals: pd.DataFrame, controller: str) -> bytes:
    """Cumulative market cost of the controller against the offline optimum (cent)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(intervals["interval"], intervals["cost_ct"].cumsum(), label=controller)
    ax.plot(intervals["interval"], intervals["offline_cost_ct"].cumsum(), "--", label="offline optimum")
    return _labelled(fig, ax, "interval", "cumulative market cost (ct)")


def v_sweep(sweep: pd.DataFrame) -> bytes:
    """Captured storage value against the weight V, and the cost bound on the right axis."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(sweep["V"], sweep["captured_value"], "o-", label="captured value")
    right = ax.twinx()
    right.plot(sweep["V"], sweep["bound_ct"], "x--", color="C1", label="bound (ct)")
    right.set_ylabel("online - offline bound (ct)")
    right.legend(loc="upper right", fontsize=7)
    return _labelled(fig, ax, "V (kWh^2/ct)", "captured storage value")


def ratings_comparison(ratings: pd.DataFrame, runs: dict[str, pd.DataFrame]) -> bytes:
    """Over the run's hours: the first line's dynamic and static rating, each mode's largest AC loading (against
    its own ratings) and the cumulative market cost of dynamic minus static ratings."""
    fig, (top, mid, low) = plt.subplots(3, 1, figsize=(6.4, 7.2), sharex=True)
    first = ratings["interval"].min()
    head = ratings[ratings["line"] == ratings["line"].min()]
    top.step((head["interval"] - first) / 4, head["dynamic_a"], where="post", label="dynamic rating, first line")
    top.step((head["interval"] - first) / 4, head["static_a"], "--", where="post", label="static rating")
    top.set_ylabel("rating (A)")
    top.legend(fontsize=7)
    for mode, t in runs.items():
        mid.plot((t["interval"] - first) / 4, pd.to_numeric(t["max_loading_percent"], errors="coerce"),
                 label=f"{mode} ratings")
    mid.set_ylabel("largest AC loading (%)")
    mid.legend(fontsize=7)
    dyn, sta = (runs[m].set_index("interval")["objective"] for m in ("dynamic", "static"))
    low.plot((dyn.index - first) / 4, (dyn - sta).cumsum(), label="dynamic - static")
    return _labelled(fig, low, "hours from the run's start", "cumulative cost difference (ct)")
