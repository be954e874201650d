"""pandapower's AC power flow on our feeders, checked against pandapower's own case33bw."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from physical.ac_power_flow import run_ac_power_flow, to_pandapower, validate_dispatch
from physical.errors import FeederError
from tests.conftest import feeder


def test_case33bw_through_our_loader_matches_pandapower_networks():
    ours = run_ac_power_flow(feeder("case33bw"))
    reference = pn.case33bw()
    pp.runpp(reference, numba=False)
    # pandapower numbers case33bw's buses 0..32 in file order, as our loader does
    assert np.allclose(ours.vm_pu, reference.res_bus.vm_pu.to_numpy(), atol=1e-8)
    assert ours.losses_mw * 1e3 == pytest.approx(reference.res_line.pl_mw.sum() * 1e3, abs=1e-4)
    assert ours.losses_mw * 1e3 == pytest.approx(202.68, abs=0.01)  # the literature's 202.7 kW


def test_near_zero_impedance_lines_become_switches():
    """case16am models a switch as a 6e-10 p.u. line: Newton-Raphson needs it as a bus-bus switch."""
    f = feeder("case16am")
    net = to_pandapower(f)
    assert len(net.switch) == 1 and len(net.line) == f.n_buses - 2
    ac = run_ac_power_flow(f)
    j = int(net.switch.element.iloc[0])
    assert ac.vm_pu[j] == pytest.approx(ac.vm_pu[f.parent[j]], abs=1e-9)
    assert np.isnan(ac.line_p_from_mw[j])


def test_power_balance_at_the_substation():
    f = feeder("case15da")
    ac = run_ac_power_flow(f)
    assert ac.p0_mw == pytest.approx(f.pd_mw.sum() + ac.losses_mw, rel=1e-9)


def test_validation_flags_voltage_violations():
    f = feeder("case85")  # at nominal load its lowest voltage is 0.874 p.u.
    ac = run_ac_power_flow(f)
    assert ac.vm_pu.min() == pytest.approx(0.874, abs=1e-3)
    val = validate_dispatch(f, -f.pd_mw, -f.qd_mvar, ac.vm_pu, ac.losses_mw, np.full(f.n_buses, 0.9),
                            np.full(f.n_buses, 1.1))
    assert val.max_vm_mismatch_pu == 0.0 and val.losses_mismatch_kw == 0.0
    assert set(val.voltage_violations) == set(np.flatnonzero(ac.vm_pu < 0.9 - 1e-6))
    assert len(val.voltage_violations) > 0


def test_dispatch_of_wrong_length_is_an_error():
    with pytest.raises(FeederError, match="needs 15 values per bus"):
        run_ac_power_flow(feeder("case15da"), np.zeros(3), np.zeros(3))


def test_a_reused_net_solves_each_dispatch_as_a_fresh_one():
    """The Grid simulator builds one net per run: a dispatch solved on it after another must give what a net
    built for it alone gives (case16am: its switch stays a switch)."""
    for case in ("case85", "case16am"):
        f = feeder(case)
        net = to_pandapower(f)
        rng = np.random.default_rng(0)
        for _ in range(3):
            p, q = -f.pd_mw * rng.uniform(0.2, 1.5, f.n_buses), -f.qd_mvar * rng.uniform(0.2, 1.5, f.n_buses)
            reused, fresh = run_ac_power_flow(f, p, q, net), run_ac_power_flow(f, p, q)
            assert np.allclose(reused.vm_pu, fresh.vm_pu, rtol=0, atol=1e-12)
            assert reused.losses_mw == pytest.approx(fresh.losses_mw, rel=1e-10)
            assert reused.p0_mw == pytest.approx(fresh.p0_mw, rel=1e-10)
