"""The DC power flow of the cascade model against pandapower's rundcpp, intact and with branches out."""

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from physical.dc_power_flow import dc_grid


def _pandapower_flows(net):
    pp.rundcpp(net)
    return np.concatenate([net.res_line.p_from_mw.to_numpy(), net.res_trafo.p_hv_mw.to_numpy()])


CASES = [("case39", ()), ("case39", (3, 20)), ("case118", ()), ("case118", (30, 100))]


@pytest.mark.parametrize("case, outages", CASES)
def test_flows_match_rundcpp(case, outages):
    net = getattr(pn, case)()
    grid = dc_grid(net)
    in_service = np.ones(grid.n_branch, bool)
    for line in outages:
        net.line.loc[grid.line_index[line], "in_service"] = False
        in_service[line] = False
    expected = np.nan_to_num(_pandapower_flows(net))
    injection = np.zeros(grid.n_bus)
    np.add.at(injection, grid.gen_bus, grid.gen_p_mw)
    injection -= grid.demand_mw
    slack = grid.gen_bus[0]  # ppc lists the ext_grid first
    assert np.all(grid.islands(in_service) == 0)
    flows = grid.flows_mw(in_service, injection, np.array([slack]))
    assert np.max(np.abs(flows - expected)) < 1e-6 * max(1.0, np.abs(expected).max())
    assert np.all(flows[~in_service] == 0)


def test_islands_follow_the_outages():
    grid = dc_grid(pn.case39())
    # bus 39-area: take every branch at one bus out and that bus is alone
    bus = grid.from_bus[0]
    at_bus = (grid.from_bus == bus) | (grid.to_bus == bus)
    labels = grid.islands(~at_bus)
    assert np.sum(labels == labels[bus]) == 1
    assert len(np.unique(labels)) == 2
