"""Physical layer: radial feeders, 15-minute profiles and AC power-flow validation (no mosaik inside)."""
