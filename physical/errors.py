"""Errors of the physical layer that carry a message meant for the user, not a traceback."""


class FeederError(ValueError):
    """A feeder or profile input that cannot be used: names the file or grid and what was expected."""


class AcNotConverged(FeederError):
    """Newton-Raphson found no AC power flow for a dispatch: a result to report, not bad input."""
