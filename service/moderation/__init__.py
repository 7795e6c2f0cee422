"""The moderators' side: the queue, its web pages and its JSON API.

Owns the queue and labelling (``queue``), moderator accounts (``moderators``),
the web queue at ``/moderate/`` with its templates and static files
(``views``), and the same actions as JSON for sites that build their own screen
(``api``).

May import: ``service.api`` (its request and response helpers), and everything
below it: ``cache``, ``scoring``, ``registry``, ``store``, the frame's base.
"""
