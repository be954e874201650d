"""Cyber layer: communication network, Byzantine attacks and detectors (no mosaik inside)."""
