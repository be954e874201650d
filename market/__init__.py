"""Market layer: instances, the centralized SOCP clearing and (later) the distributed ADMM (no mosaik inside)."""
