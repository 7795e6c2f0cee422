"""A model registry shared by several machines through the database.

Selected by ``COMMENTMOD_MODEL_REGISTRY=database``. Publishing a version
stores the artifact bytes, its sha256 and its metadata in ``model_artifacts``;
the current version of a family is the newest promote/rollback row of
``model_events``. Each instance keeps a local copy of every version it loads
under its own model directory and checks the sha256 (bytes from the database,
then the file on disk) before unpickling, so a half-fetched or tampered file
is never loaded.

The file registry (:class:`~service.registry.versions.Registry`) stays the default: one
machine needs nothing but a directory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from service.errors import ModelIntegrityError, NotFound
from service.registry.versions import (
    ARTIFACT,
    METADATA,
    PROMOTING_ACTIONS,
    Registry,
    rollback_target,
)
from service.store import schema as t
from service.store.db import Store

REGISTRY_KINDS = ("file", "database")
POINTER_ACTIONS = (*sorted(PROMOTING_ACTIONS), "rollback")


class SharedRegistry(Registry):
    """The file layout of :class:`Registry` as a local cache of the database."""

    def __init__(self, root: Path, store: Store) -> None:
        super().__init__(root)
        self.store = store

    # --- publishing ----------------------------------------------------------
    def save(self, pipeline: Any, metadata: dict[str, Any], family: str = "spam") -> str:
        version = super().save(pipeline, metadata, family)
        self.publish(version)
        return version

    def publish(self, version: str) -> None:
        """Copy a local version into the database (idempotent)."""
        meta = super().verify(version)
        data = (self.version_dir(version) / ARTIFACT).read_bytes()
        with self.store.transaction() as c:
            found = c.execute(
                select(t.model_artifacts.c.version).where(t.model_artifacts.c.version == version)
            ).first()
            if found is None:
                c.execute(
                    insert(t.model_artifacts).values(
                        version=version,
                        family=str(meta.get("family", "spam")),
                        sha256=meta["sha256"],
                        metadata=json_safe(meta),
                        artifact=data,
                        created_at=datetime.now(UTC),
                    )
                )

    # --- fetching ------------------------------------------------------------
    def fetch(self, version: str) -> None:
        """Make sure a verified local copy of ``version`` exists."""
        target = self.version_dir(version)
        if (target / ARTIFACT).is_file() and (target / METADATA).is_file():
            return
        row = self.store.read(
            lambda c: c.execute(
                select(t.model_artifacts).where(t.model_artifacts.c.version == version)
            ).first()
        )
        if row is None or row.artifact is None:
            raise NotFound(f"no model {version!r} in the shared registry")
        data = bytes(row.artifact)
        digest = hashlib.sha256(data).hexdigest()
        if digest != row.sha256 or digest != row.metadata.get("sha256"):
            raise ModelIntegrityError(
                f"model {version!r} in the database: sha256 {digest[:12]}… does not match "
                f"its record {str(row.sha256)[:12]}…"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".fetch-"))
        try:
            (tmp / ARTIFACT).write_bytes(data)
            (tmp / METADATA).write_text(json.dumps(row.metadata, indent=2, sort_keys=True))
            os.replace(tmp, target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (target / ARTIFACT).is_file():  # another worker won the race otherwise
                raise

    def metadata(self, version: str) -> dict[str, Any]:
        self.version_dir(version)  # validates the name before any query
        if not (self.version_dir(version) / METADATA).is_file():
            self.fetch(version)
        return super().metadata(version)

    def verify(self, version: str) -> dict[str, Any]:
        self.fetch(version)
        return super().verify(version)

    def versions(self, family: str | None = None) -> list[dict[str, Any]]:
        q = select(t.model_artifacts.c.metadata).order_by(t.model_artifacts.c.created_at)
        if family is not None:
            q = q.where(t.model_artifacts.c.family == family)
        return self.store.read(lambda c: [dict(r[0]) for r in c.execute(q)])

    # --- the pointer -----------------------------------------------------------
    def _latest(self, family: str) -> Any:
        q = (
            select(t.model_events.c.id, t.model_events.c.version)
            .where(t.model_events.c.family == family, t.model_events.c.action.in_(POINTER_ACTIONS))
            .order_by(t.model_events.c.id.desc())
            .limit(1)
        )
        return self.store.read(lambda c: c.execute(q).first())

    def pointers(self) -> dict[str, str]:
        families = self.store.read(
            lambda c: [r[0] for r in c.execute(select(t.model_events.c.family).distinct())]
        )
        out = {}
        for family in families:
            row = self._latest(family)
            if row is not None:
                out[family] = str(row.version)
        return out

    def current(self, family: str = "spam") -> str | None:
        row = self._latest(family)
        return None if row is None else str(row.version)

    def pointer_token(self, family: str = "spam") -> object:
        row = self._latest(family)
        return None if row is None else int(row.id)

    def set_current(self, version: str, *, action: str = "promote", actor: str = "cli",
                    detail: dict[str, Any] | None = None) -> None:
        meta = self.verify(version)
        family = str(meta.get("family", "spam"))
        previous = self.current(family)
        with self.store.transaction() as c:
            c.execute(
                insert(t.model_events).values(
                    family=family,
                    version=version,
                    previous=previous,
                    action=action,
                    actor=actor[:200],
                    at=datetime.now(UTC),
                    detail=detail,
                )
            )

    def note(self, version: str, action: str, *, actor: str = "cli",
             detail: dict[str, Any] | None = None) -> None:
        meta = self.metadata(version)
        family = str(meta.get("family", "spam"))
        with self.store.transaction() as c:
            c.execute(
                insert(t.model_events).values(
                    family=family, version=version, previous=self.current(family),
                    action=action, actor=actor[:200], at=datetime.now(UTC), detail=detail or {},
                )
            )

    def history(self) -> list[dict[str, Any]]:
        q = select(t.model_events).order_by(t.model_events.c.id)
        rows = self.store.read(lambda c: [dict(r._mapping) for r in c.execute(q)])
        for r in rows:
            r["at"] = r["at"].isoformat(timespec="seconds") if r.get("at") else ""
        return rows

    def rollback(self, family: str = "spam", actor: str = "cli") -> str:
        previous = rollback_target(self.history(), family)
        self.set_current(previous, action="rollback", actor=actor)
        return previous


def json_safe(value: Any) -> Any:
    """NaN is not JSON (PostgreSQL refuses it): store it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def make_registry(kind: str, root: Path, store: Store | None) -> Registry:
    """The registry a setting asks for: ``file`` (default) or ``database``."""
    if kind == "database":
        if store is None:
            raise ValueError("the database registry needs a store")
        return SharedRegistry(root, store)
    return Registry(root)
