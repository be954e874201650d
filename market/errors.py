"""Errors of the market layer that carry a message meant for the user, not a traceback."""


class InstanceError(ValueError):
    """A market instance or option that cannot be used: names the file or field and what was expected."""
