"""The ``hwlink`` command line."""
