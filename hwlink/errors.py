"""Exception hierarchy shared by every hwlink layer.

One base class lets the CLI turn any expected failure into a one-line message while real bugs still
surface as tracebacks.
"""


class HwlinkError(Exception):
    """Base of every error hwlink raises on purpose (bad input, device trouble, corrupt files)."""


class ConfigError(HwlinkError, ValueError):
    """A value given by the user (URL, duration, line name, flag) cannot be used."""


class LineError(HwlinkError, ValueError):
    """A line command does not fit the line it addresses (unknown line, unsupported mode)."""


class BoardError(HwlinkError):
    """The board failed or went away; raised to subscribers and callers after it happens."""
