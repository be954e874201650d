"""The attacker whose whole local state is false: it runs its ADMM step on a load it does not have.

A message attack changes what an agent sends; this one changes what the agent *is* to the market. The
``false-load`` agent declares its load ``delta`` p.u. higher (lower, if negative) than it is, from before the
first iteration, and then follows the algorithm honestly: every value it sends -- flows, voltage, trades,
targets -- is consistent with the DistFlow equations, its neighbours' values and its own history. No
message screen has anything to compare it against (the market converges to the optimum of the *declared*
instance). The grid does not share the lie: the agent's true injection differs from its dispatch by the
difference between its true and its declared baseline, and that is what the meters read (what the AC
validation and the cross-layer check of :mod:`cyber.cross_layer` see).

The declared load keeps the agent's role (a buyer that declared itself a seller would change the partner
graph the market was set up with); a shift that would is refused.
"""

from __future__ import annotations

from dataclasses import replace

from cyber.attacks import AttackSpec
from cyber.errors import CyberError
from market.instance import PASSIVE_THRESHOLD_KW, Agent, MarketInstance
from market.result import ClearingResult

KIND = "false-load"


def false_loads(attacks: tuple[AttackSpec, ...] | list) -> dict[int, float]:
    """Bus -> declared extra load in p.u. of every false-load agent."""
    shifts: dict[int, float] = {}
    for spec in attacks:
        if spec.kind == KIND:
            for bus in spec.agents:
                shifts[bus] = shifts.get(bus, 0.0) + spec.delta
    return shifts


def declared_instance(instance: MarketInstance, attacks: tuple[AttackSpec, ...] | list) -> MarketInstance:
    """The instance as the market sees it: the false-load agents' declared loads (reactive power at the load's
    power factor) in place of their true ones; the instance itself when there are none."""
    shifts = false_loads(attacks)
    if not shifts:
        return instance
    base_kw = instance.feeder.base_mva * 1e3
    agents = list(instance.agents)
    for bus, delta in shifts.items():
        if not 1 <= bus <= len(agents):
            raise CyberError(f"attack false-load agents [{bus}]: {instance.case} has prosumers 1..{len(agents)}")
        a = agents[bus - 1]
        d_kw = a.d_kw + delta * base_kw
        p_hat = a.g_kw - d_kw
        role = "buyer" if p_hat < -PASSIVE_THRESHOLD_KW else "seller" if p_hat > PASSIVE_THRESHOLD_KW else "passive"
        if d_kw < 0 or role != a.role:
            raise CyberError(f"attack false-load: agent {bus} ({a.role}, load {a.d_kw:.2f} kW, generation "
                             f"{a.g_kw:.2f} kW) cannot declare a load of {d_kw:.2f} kW: it would be "
                             f"{'negative' if d_kw < 0 else 'a ' + role}; choose a smaller delta")
        agents[bus - 1] = Agent(a.bus, a.role, d_kw, a.g_kw, p_hat, -a.tan_phi * d_kw, a.tan_phi, a.a, a.b, a.c)
    return replace(instance, agents=tuple(agents))


def true_injections(result: ClearingResult, instance: MarketInstance,
                    attacks: tuple[AttackSpec, ...] | list) -> ClearingResult:
    """The dispatch as the meters see it: each false-load agent injects its dispatch less its declared extra
    load (and the reactive power of it); the substation's row is left to the AC power flow's slack."""
    shifts = false_loads(attacks)
    if not shifts or not result.status.has_solution:
        return result
    p, q = result.p.copy(), result.q.copy()
    for bus, delta in shifts.items():
        p[bus] += delta
        q[bus] += instance.agents[bus - 1].tan_phi * delta
    return replace(result, p=p, q=q)
