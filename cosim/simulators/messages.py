"""What the simulators of the world send each other: one frozen dataclass per kind of message, built from the
libraries' own typed objects (instances, message batches, dispatches, line ratings, the cyber layer's reports).

The world's simulators all run in this process (mosaik's ``python:`` simulators): mosaik calls their ``step``
and ``get_data`` directly (``mosaik.proxies.LocalProxy.send``, 3.6 and the later versions with trace logging
alike) and hands every value over as the Python object it is, by reference -- it copies nothing and encodes
nothing. Only a simulator started with ``cmd`` or
``connect`` (a separate process) sees JSON (``mosaik_api_v3.connection``, a plain ``json.JSONEncoder``); the
only attributes such a simulator may connect to are the grid's bus and line entities
(:mod:`cosim.simulators.grid_entities`, plain numbers), so none of these messages needs a wire form. They are
frozen, so that a receiver cannot change what the sender keeps (the same object reaches both); every receiver
takes its inputs through :func:`received`, which refuses anything else with the simulator, attribute and
sender named.

- Profiles -> Market ``instance_json``: the quarter hour's :class:`~market.instance.MarketInstance` as JSON text
  (its own wire form, :meth:`~market.instance.MarketInstance.to_json`, also kept for the results folder).
- Weather -> Market, Grid ``ratings``: :class:`physical.feeder_ratings.LineRatings`.
- Market -> Comm ``round``, Comm -> Detector ``delivered``, Detector -> Market ``screened``: a
  :class:`ClearingRound` (a message round) or a :class:`ClearingClose` (the reports at the clearing's end).
- Market -> Grid ``dispatch``: :class:`DispatchOrder`.
- Market -> Storage ``battery``: :class:`BatteryPowers`; Storage -> Market ``soc``: :class:`StorageState`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cosim.interval import Dispatch
from cyber.cross_layer import MarketReports, Meters
from cyber.resilient_admm import CommReport, ScreeningReport
from market.instance import MarketInstance
from market.messages import MessageBatch


class MessageError(TypeError):
    """A simulator was sent something other than the message its attribute carries."""


@dataclass(frozen=True, eq=False)
class ClearingRound:
    """One message round of a clearing on its way Market -> Comm -> Detector -> Market: the batches the agents
    sent (then what the network delivered of them, then what the detectors passed on), the agents' own values
    for their detectors (never on the network), the instance being cleared (with the clearing's first round,
    so that Comm and Detector set up its cyber layer) and, from Comm on, the round's end in simulated time
    since the clearing started (ms; NaN without timing)."""

    interval: int
    batches: tuple[MessageBatch, ...]
    local: MessageBatch | None = None
    instance: MarketInstance | None = None
    clock_ms: float = math.nan


@dataclass(frozen=True, eq=False)
class ClearingClose:
    """The end of a clearing: the Market asks for the reports, Comm adds its own, Detector its detectors'."""

    interval: int
    comm: CommReport | None = None
    screening: ScreeningReport | None = None


@dataclass(frozen=True, eq=False)
class DispatchOrder:
    """What the Grid checks of a quarter hour's clearing: the dispatch, the voltage limits it was cleared
    with (p.u.) and, for the cross-layer check, what the market believed (``None``: a centralized clearing or
    the grid-only fallback, which report nothing) and the meters."""

    interval: int
    dispatch: Dispatch
    vmin_pu: np.ndarray
    vmax_pu: np.ndarray
    reports: MarketReports | None
    meters: Meters


@dataclass(frozen=True, eq=False)
class BatteryPowers:
    """Every battery's charging and discharging power of a published quarter hour (p.u. of the feeder's base;
    idle under the grid-only fallback)."""

    interval: int
    charge_pu: np.ndarray
    discharge_pu: np.ndarray


@dataclass(frozen=True, eq=False)
class StorageState:
    """Every battery's stored energy (kWh) after the ``applied`` quarter hours the Storage simulator has
    applied so far."""

    applied: int
    soc_kwh: np.ndarray


def received(inputs: dict, eid: str, attr: str, kind: type | tuple[type, ...], simulator: str) -> list:
    """The values of ``attr`` sent to entity ``eid`` (in mosaik's order of senders), each checked to be a
    ``kind``."""
    values = inputs.get(eid, {}).get(attr, {})
    for source, value in values.items():
        if not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise MessageError(f"{simulator} simulator: {attr} from {source}: expected a {names}, "
                               f"got {type(value).__name__}")
    return list(values.values())
