"""Alembic environment: runs on the connection commentmod passes in."""

from __future__ import annotations

from alembic import context

from service.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - commentmod always passes one
    raise RuntimeError("run migrations through `commentmod db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
