"""Co-simulation layer: CLI, results folders and (later) the mosaik wiring."""
