"""Fully distributed consensus ADMM for the P2P market (paper Sec. II-B; model.md "Distributed solution")."""
