"""The state one ``commentmod`` invocation shares between its commands: settings,
the model registry and the store, each built on first use. The command groups
that live beside their features (toxicity, coral...) use the same Context, so
every command sees the same registry (file or database) and database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from service.config import Settings, load_settings, unknown_variables
from service.registry.versions import Registry


class Context:
    """Settings and lazily built resources for one CLI invocation."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._store: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            for line in unknown_variables():
                click.echo(f"warning: {line}", err=True)
        return self._settings

    @property
    def registry(self) -> Registry:
        from service.registry.shared import make_registry

        shared = self.settings.model_registry == "database"
        return make_registry(
            self.settings.model_registry, self.settings.model_dir, self.store if shared else None
        )

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store


def open_store(settings: Settings) -> Any:
    """The configured database, migrated. Creating the default SQLite file is said on
    stderr: a command run with another home must not silently start from nothing."""
    from service.store import migrate
    from service.store.db import Store, engine_for

    url = settings.resolved_database_url
    fresh = None
    if not settings.database_url:
        path = Path(url.removeprefix("sqlite:///"))
        fresh = None if path.exists() else path
    store = Store(engine_for(url))
    migrate.upgrade(store.engine)
    if fresh is not None:
        click.echo(
            f"note: created a new, empty database at {fresh} (COMMENTMOD_HOME, "
            "COMMENTMOD_DATA_DIR or COMMENTMOD_DATABASE_URL choose another; "
            "see docs/configuration.md)",
            err=True,
        )
    return store


pass_ctx = click.make_pass_decorator(Context, ensure=True)
