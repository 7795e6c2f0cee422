"""The ``commentmod`` command, one module per group.

``main`` wires the groups: ``serve``, ``train``, ``evaluate``, ``models``,
``db``; ``keys``, ``rules``, ``moderation`` (moderators, labels, privacy),
``retrain`` (models diff, shadow, sites), ``toxicity`` (and ``coral``).
``context`` holds the state one invocation shares (settings, registry, store).
``python -m service.cli`` runs it without the console script.

May import: every wing below it and the frame's base; ``training`` inside
commands only, so that importing the CLI stays cheap.
"""
