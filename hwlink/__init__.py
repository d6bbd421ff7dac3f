"""hwlink: drive experiment hardware from Python and get its timestamps right."""

from hwlink.errors import HwlinkError

__version__ = "0.1.0"
__all__ = ["HwlinkError", "__version__"]
