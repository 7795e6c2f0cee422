"""The wire faces sites call: JSON, Akismet, Perspective, Coral.

Owns the native JSON API (``check``), the check flow every face shares
(``checking``: score, record, count), request parsing (``comments``), site-key
authentication (``auth``), rate limits (``limits``), the Akismet protocol
(``akismet``), the Perspective API and its discovery document (``perspective``,
``discovery``), Coral's moderation phase (``coral``), the rules API (``rules``),
model reports and per-worker loop resources (``models``), the OpenAPI document
(``openapi``) and the JSON provider (``jsonfast``).

May import: ``service.cache``, ``service.scoring``, ``service.registry``,
``service.store`` and the frame's base. Never ``service.app``.
"""
