"""Storage units: seeded assignment sized to the bus, and refusal of data that cannot describe a battery."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from physical.errors import FeederError
from physical.storage import StorageUnit, assign_storage, validate_storage

PEAK = np.array([0.0, 0.1, 0.2, 0.0, 0.05])  # MW; bus 3 has no load
RENEWABLE = np.array([0.0, 0.3, 0.0, 0.0, 0.0])


def draw(share: float, seed: int = 0, **kw):
    opts = dict(power_ratio=(0.5, 1.0), hours=2.0, efficiency=0.95, soc_range=(0.1, 0.9), soc0=0.5) | kw
    return assign_storage(PEAK, RENEWABLE, np.random.default_rng(seed), share=share, **opts)


def test_every_loaded_bus_gets_a_unit_sized_to_its_load_or_pv():
    units = draw(1.0)
    assert [u.bus for u in units] == [1, 2, 4]
    for u in units:
        size_kw = max(PEAK[u.bus], RENEWABLE[u.bus]) * 1e3
        assert 0.5 * size_kw <= u.charge_kw <= size_kw
        assert u.capacity_kwh == pytest.approx(2.0 * u.charge_kw)
        assert (u.soc_min_kwh, u.soc_max_kwh, u.soc0_kwh) == pytest.approx(
            (0.1 * u.capacity_kwh, 0.9 * u.capacity_kwh, 0.5 * u.capacity_kwh))
    validate_storage(units, len(PEAK))


def test_assignment_is_seeded_and_share_zero_gives_none():
    assert draw(0.5, seed=3) == draw(0.5, seed=3)
    assert draw(0.0) == ()


def test_energy_step_applies_one_way_efficiencies():
    u = draw(1.0)[0]
    assert u.step_kwh(10.0, 0.0, 0.25) == pytest.approx(0.25 * 0.95 * 10)
    assert u.step_kwh(0.0, 10.0, 0.25) == pytest.approx(-0.25 * 10 / 0.95)


@pytest.mark.parametrize("change", [dict(eta_c=1.2), dict(capacity_kwh=0.0), dict(soc0_kwh=-1.0),
                                    dict(soc_max_kwh=1e9), dict(bus=0), dict(charge_kw=float("nan"))])
def test_bad_units_are_refused_naming_the_unit(change):
    unit = replace(draw(1.0)[0], **change)
    with pytest.raises(FeederError, match=r"storage\[0\]"):
        validate_storage((unit,), len(PEAK))


def test_two_units_on_one_bus_are_refused():
    u = draw(1.0)[0]
    with pytest.raises(FeederError, match="at most one unit"):
        validate_storage((u, StorageUnit(**{**u.__dict__})), len(PEAK))
