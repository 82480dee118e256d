"""``python -m hotoku``: the same as the ``hotoku`` command."""

from hotoku.cli import main

main()
