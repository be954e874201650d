"""Errors of the cyber layer that carry a message meant for the user, not a traceback."""


class CyberError(ValueError):
    """A communication-network, attack or detector setting that cannot be used, naming what was expected."""
