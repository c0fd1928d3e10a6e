"""``python -m limone_obs`` runs the ``limone-obs`` command."""

from limone_obs.cli import main

main()
