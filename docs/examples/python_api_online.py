from cosim import api

# Batteries on half the loaded buses of case15da, the Lyapunov controller over two evening hours, against the
# offline optimum with perfect foresight (every dispatch AC-checked).
options = api.InstanceOptions(storage_share=0.5, storage_hours=2.0, tariff="tou")
online = api.run_online("case15da", "lyapunov", start="2016-06-21T18:00", intervals=8, seed=0, options=options)
print(online.report.cost_ct, online.report.offline_cost_ct, online.report.captured_value)
tables = online.tables()                        # the CSV files `cosim online` writes: soc.csv, intervals.csv
print(tables["soc.csv"].head())

# A co-simulated quarter hour through mosaik, and the tables `cosim run` writes of it.
day = api.run_scenario("scenarios/case15da_normal_none.toml")
print(day.report.converged, sorted(day.tables()))
