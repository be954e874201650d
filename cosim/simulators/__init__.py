"""mosaik adapters: each translates between mosaik's data flow and one library; none holds an algorithm.

Time is in milliseconds (``time_resolution = 0.001``) so that every message round of a clearing takes simulated
time: the Profiles simulator ticks every quarter hour, the Market runs the ADMM a round per step, Comm carries
each round over the network (attacks, loss, latency) and Detector screens it, the Grid checks each dispatch
with AC power flow, and (with a scenario's ``[ratings]``) Weather gives every line its thermal rating of the
quarter hour for the Market's limits and the Grid's loading check. What they send each other are the typed
messages of :mod:`messages`; Market, Grid and Storage keep what the results folder needs in :mod:`run_store`.
"""

QUARTER_HOUR_MS = 900_000
