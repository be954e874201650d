"""Transformers off their nominal ratio (SimBench's tapped MV/LV transformers): the ratio folded into the voltage
bases below them gives the closed-form two-bus voltage and pandapower's AC power flow with the tap modelled."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandas as pd
import pytest

from market.instance import InstanceOptions, build_instance, instance_from_dict
from market.problem.clearing import solve_clearing
from physical.ac_power_flow import run_ac_power_flow
from physical.errors import FeederError
from physical.simbench_grid import grid_from_net, load_simbench_grid, simbench_ac_power_flow

S_RATED, VK, VKR = 0.25, 4.0, 1.2  # MVA, %, %
LINE_OHM = (0.2, 0.08)
LOAD = (0.12, 0.04)  # MW, Mvar


def _net(tap_side: str, tap_pos: float, vn_lv_kv: float = 0.4, step_degree: float = 0.0) -> pp.pandapowerNet:
    """A 20 kV source, a 20/0.4 kV transformer with a tap changer as SimBench writes it (no tap changer type)
    and one 0.4 kV line to a load: bus 0 - trafo - bus 1 - line - bus 2 (load)."""
    net = pp.create_empty_network(sn_mva=1.0)
    for kv in (20.0, 0.4, 0.4):
        pp.create_bus(net, vn_kv=kv, min_vm_pu=0.9, max_vm_pu=1.1)
    pp.create_ext_grid(net, 0, vm_pu=1.0)
    pp.create_transformer_from_parameters(net, 0, 1, sn_mva=S_RATED, vn_hv_kv=20.0, vn_lv_kv=vn_lv_kv,
                                          vkr_percent=VKR, vk_percent=VK, pfe_kw=0.0, i0_percent=0.0,
                                          tap_side=tap_side, tap_neutral=0, tap_min=-2, tap_max=2,
                                          tap_step_percent=2.5, tap_step_degree=step_degree, tap_pos=tap_pos,
                                          name="T1")
    pp.create_line_from_parameters(net, 1, 2, length_km=1.0, r_ohm_per_km=LINE_OHM[0], x_ohm_per_km=LINE_OHM[1],
                                   c_nf_per_km=0.0, max_i_ka=0.4, name="L1")
    pp.create_load(net, 2, p_mw=LOAD[0], q_mvar=LOAD[1], name="house")
    net["profiles"] = {"load": pd.DataFrame(index=range(4))}  # no profile: the reference power every interval
    return net


def _two_bus_vm(n: float, r: float, x: float, p: float, q: float) -> float:
    """|V| of a load p + jq (p.u.) fed through r + jx from a source at n p.u.: the root of
    |V|^4 - (n^2 - 2 (r p + x q)) |V|^2 + |z|^2 |S|^2 = 0 on the high-voltage branch."""
    a = n**2 - 2 * (r * p + x * q)
    return float(np.sqrt((a + np.sqrt(a**2 - 4 * (r * r + x * x) * (p * p + q * q))) / 2))


# (tap side, position, rated LV kV, the no-load ratio n and the LV winding over the bus, k, by hand)
CASES = [("hv", 2.0, 0.4, 1 / 1.05, 1.0), ("hv", -1.0, 0.4, 1 / 0.975, 1.0),
         ("lv", -1.0, 0.42, 0.42 * 0.975 / 0.4, 0.42 * 0.975 / 0.4)]


@pytest.mark.parametrize(("side", "pos", "vn_lv", "n", "k"), CASES)
def test_tapped_transformer_matches_the_closed_form_and_pandapower(side, pos, vn_lv, n, k):
    grid = grid_from_net(_net(side, pos, vn_lv), "synthetic")
    f = grid.feeder
    assert np.allclose(f.vm_base, [1.0, n, n])
    base = f.base_mva
    # transformer (LV p.u., its LV winding's rated voltage k times the bus's) and line in series
    z_tr, r_tr = VK / 100 * base / S_RATED * k**2, VKR / 100 * base / S_RATED * k**2
    z_line = 0.4**2 / base
    r, x = r_tr + LINE_OHM[0] / z_line, np.sqrt(z_tr**2 - r_tr**2) + LINE_OHM[1] / z_line
    load = grid.feeder_bus[2]
    p, q = np.zeros(f.n_buses), np.zeros(f.n_buses)
    p[load], q[load] = -LOAD[0], -LOAD[1]
    expected = _two_bus_vm(n, r, x, LOAD[0] / base, LOAD[1] / base)
    on_net = simbench_ac_power_flow(grid, p, q)  # pandapower, the tap modelled
    on_feeder = run_ac_power_flow(f, p, q)  # the folded feeder's own net, back in nominal p.u.
    assert abs(on_net.vm_pu[load] - expected) < 1e-9 and abs(on_feeder.vm_pu[load] - expected) < 1e-9
    assert abs(on_net.vm_pu[grid.feeder_bus[1]] - n) > 1e-3  # the load drops the voltage below no-load n

    inst = build_instance(f, interval=0, seed=0)
    res = solve_clearing(inst)
    assert res.status.has_solution and res.max_relaxation_gap <= 1e-6
    vm = f.nominal_vm(np.sqrt(res.v))
    assert abs(vm[load] - _two_bus_vm(n, r, x, -res.p[load], -res.q[load])) < 1e-6


def test_tap_moves_the_voltage_limits_not_the_fees():
    tapped = grid_from_net(_net("hv", 2.0), "synthetic").feeder
    neutral = grid_from_net(_net("hv", 0.0), "synthetic").feeder
    assert neutral.vm_base is None
    assert np.allclose(tapped.path_impedance_pu(), neutral.path_impedance_pu(), rtol=1e-12)
    inst = build_instance(tapped, interval=0, seed=0, options=InstanceOptions(vmin_pu=0.95, vmax_pu=1.05))
    assert np.allclose(tapped.nominal_vm(inst.vmin_pu)[1:], 0.95) and np.allclose(inst.vmax_pu[1:], 1.05 * 1.05)
    assert np.allclose(instance_from_dict(inst.to_dict()).feeder.vm_base, tapped.vm_base)


def test_a_phase_shifting_tap_is_refused_by_name():
    with pytest.raises(FeederError, match="transformer 'T1' is 1 taps off neutral .* 5.0 degrees per step"):
        grid_from_net(_net("hv", 1.0, step_degree=5.0), "synthetic")


def test_simbench_tap_acts_on_the_lv_grid():
    """1-LV-rural1--1-sw runs its transformer one 2.5 % step up on the HV side: with no injections (no shunts
    left) every LV bus sits at 1 / 1.025 of the source on the SimBench net, and the feeder knows it."""
    grid = load_simbench_grid("1-LV-rural1--1-sw")
    f = grid.feeder
    zero = np.zeros(f.n_buses)
    ac = simbench_ac_power_flow(grid, zero, zero)
    assert np.allclose(ac.vm_pu[1:], 1 / 1.025, atol=1e-12) and np.allclose(f.vm_base[1:], 1 / 1.025)


def test_nested_transformers_multiply_their_ratios():
    """20 kV -(tap +1)- 10 kV -(tap -2)- 0.4 kV: the LV bus's base is the product of both ratios, and the
    folded feeder's AC power flow is pandapower's on the net with both taps, for any injection."""
    net = pp.create_empty_network(sn_mva=1.0)
    for kv in (20.0, 10.0, 0.4):
        pp.create_bus(net, vn_kv=kv, min_vm_pu=0.9, max_vm_pu=1.1)
    pp.create_ext_grid(net, 0, vm_pu=1.0)
    for hv, lv, pos in ((0, 1, 1.0), (1, 2, -2.0)):
        pp.create_transformer_from_parameters(net, hv, lv, sn_mva=S_RATED, vn_hv_kv=net.bus.vn_kv[hv],
                                              vn_lv_kv=net.bus.vn_kv[lv], vkr_percent=VKR, vk_percent=VK,
                                              pfe_kw=0.0, i0_percent=0.0, tap_side="hv", tap_neutral=0,
                                              tap_step_percent=2.5, tap_pos=pos, name=f"T{hv}")
    pp.create_load(net, 1, p_mw=0.05, q_mvar=0.01)
    pp.create_load(net, 2, p_mw=LOAD[0], q_mvar=LOAD[1])
    net["profiles"] = {"load": pd.DataFrame(index=range(4))}
    grid = grid_from_net(net, "nested")
    f = grid.feeder
    n0, n1 = 1 / 1.025, 1 / 0.95
    assert np.allclose(f.vm_base[[grid.feeder_bus[b] for b in (0, 1, 2)]], [1.0, n0, n0 * n1])
    p = -np.r_[0.0, 0.05, LOAD[0]][[f.labels[j] for j in range(f.n_buses)]]
    q = -np.r_[0.0, 0.01, LOAD[1]][[f.labels[j] for j in range(f.n_buses)]]
    on_net, on_feeder = simbench_ac_power_flow(grid, p, q), run_ac_power_flow(f, p, q)
    assert np.max(np.abs(on_net.vm_pu - on_feeder.vm_pu)) < 1e-9 and abs(on_net.losses_mw - on_feeder.losses_mw) < 1e-12
    zero = np.zeros(f.n_buses)
    assert abs(simbench_ac_power_flow(grid, zero, zero).vm_pu[grid.feeder_bus[2]] - n0 * n1) < 1e-12  # no load
