"""What every ADMM splitting shares: the agents' state arrays, the half-step phases and the local report."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from market.messages import MessageBatch

X_PHASE, Y_PHASE = "x", "y"
#: How a splitting's projection sends a round of messages and receives what arrived: ``yield from`` it.
Exchange = Callable[[list[MessageBatch]], Generator]
#: An agent's report of its own current values to its own detector (sender = receiver): never on the network.
LOCAL = "local"
LOCAL_FIELDS = ("p", "q", "P", "Q", "l", "v", "w")


@dataclass
class AgentStates:
    """Own variables (``x``), held copies (``y``) and their scaled duals (``u``) of all agents.

    The splitting fixes the layout of ``y`` and ``u``: copies of network and market variables first, then
    the buyer's and the seller's copy of each trade in its reciprocity pair (``m`` each).
    """

    x: dict[str, np.ndarray]
    y: np.ndarray
    u: np.ndarray


def local_report(x: dict[str, np.ndarray], k: int) -> MessageBatch:
    """Each agent's own values after its local update, handed to its own detector (the "own shared values"
    of a detection window; the physics check needs them)."""
    buses = np.arange(len(x["p"])) + 1
    return MessageBatch(LOCAL, X_PHASE, k, buses, buses, buses - 1, {f: x[f].copy() for f in LOCAL_FIELDS})


def trades(x: dict[str, np.ndarray]) -> np.ndarray:
    """A trade is the mean of its buyer's and its seller's side."""
    return 0.5 * (x["tb"] + x["ts"])


def relaxed(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """The over-relaxed iterate ``alpha x + (1 - alpha) y``."""
    return alpha * x + (1 - alpha) * y


def relaxed_update(s: AgentStates, x_copy: np.ndarray, alpha: float, project: Callable[[np.ndarray], Generator]
                   ) -> Generator:
    """(6b) ``y = project(alpha x + (1 - alpha) y + u)`` and (6c) the scaled duals, for any splitting.

    ``project`` is a generator function (a projection may exchange messages on the way: ``yield from`` it).
    Returns, per copy, the primal residual ``x - y`` and the change of ``y`` (for the dual residual).
    """
    x_hat = relaxed(x_copy, s.y, alpha)
    y = yield from project(x_hat + s.u)
    change = y - s.y
    s.y = y
    s.u = s.u + x_hat - y
    return x_copy - y, change


def agent_solution(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The agents' own variables as the solution (with the batteries' output ``s`` when there are units)."""
    solution = {"v": x["v"], "P": x["P"], "Q": x["Q"], "l": x["l"], "p": x["p"], "q": x["q"], "t": trades(x),
                "t0": x["t0"]}
    if "s" in x:  # batteries behind the meters (market.admm.battery)
        solution["s"] = x["s"]
    return solution
