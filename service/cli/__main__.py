"""``python -m service.cli``: the ``commentmod`` command without the console script."""

from service.cli.main import main

main()
