"""``python -m blockproof``: the same as the ``blockproof`` command."""

from blockproof.cli import main

main()
