"""Durable state: the database and everything written to it.

Owns the :class:`~service.store.db.Store` (SQLAlchemy Core over SQLite or
PostgreSQL), the schema and its Alembic migrations (``migrate``), labels import
and export, retention, the write-behind queue that records checks off the
request path, per-site settings and per-site stats. Site keys are rows here too.

May import: the frame's base (``service.config``, ``errors``, ``logs``,
``metrics``, ``resources``) and ``training``'s plain text code. Nothing above it:
the store knows no model, cache or web face.
"""
