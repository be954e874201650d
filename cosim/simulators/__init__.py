"""mosaik adapters: each translates between mosaik's data flow and one library; none holds an algorithm.

Time is in milliseconds (``time_resolution = 0.001``) so that a clearing's simulated duration is visible: the
Profiles simulator ticks every quarter hour, the Market answers each tick when its ADMM has finished in
simulated time, the Grid checks each dispatch with AC power flow, the Collector keeps everything.
"""

QUARTER_HOUR_MS = 900_000
