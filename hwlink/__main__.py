"""``python -m hwlink``: the same as the ``hwlink`` command."""

from hwlink.cli import main

if __name__ == "__main__":
    main()
