from cosim import api

# A SimBench grid: its own loads, PV and storage drive the prosumers.
inst = api.build_instance("1-MV-rural--0-sw", interval="2016-06-21T12:00", seed=0)
central = api.clear(inst)                       # centralized SOCP (cvxpy + Clarabel)
print(central.report.objective_ct, central.report.max_relaxation_gap)
print(central.buses[["bus", "role", "p_kw", "v_socp_pu", "vm_ac_pu"]].head())
check = api.validate(central)                   # AC power flow on the SimBench net itself
print(check.max_vm_mismatch_pu, check.voltage_violations)

distributed = api.clear(inst, "admm")           # the prosumers' consensus ADMM
print(distributed.report.iterations, distributed.report.optimality_gap)

# A Byzantine prosumer on case15da, every agent screening with the tensor detector.
small = api.build_instance("case15da", seed=0)
attack = api.AttackSpec("static-fdi", agents=(2,), fields=("P", "Q"), delta=0.05)
defended = api.clear(small, "admm", attacks=(attack,), detector="tensor")
print(defended.report.tpr, defended.report.fpr, defended.report.optimality_gap)
print(defended.iterations[["iteration", "primal_residual", "dual_residual"]].tail())

# A co-simulated quarter hour through mosaik.
day = api.run_scenario("scenarios/case15da_normal_none.toml")
print(day.report, day.intervals.head())
