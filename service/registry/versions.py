"""Model versions on disk: save, verify, load, and the current-version pointer.

Layout under the model directory::

    models/<version>/model.joblib      the scikit-learn Pipeline
    models/<version>/lean.json         the same model compiled to plain tables
                                       (linear spam models): what workers serve
    models/<version>/lean.arrays       or to arrays mapped from the file (the
                                       multi-output toxicity models)
    models/<version>/metadata.json     data, code and library versions, metrics,
                                       thresholds, sha256 of model.joblib and
                                       of lean.json
    models/current.json                {"spam": "<version>", ...}, replaced atomically
    models/history.jsonl               one line per promote/rollback

joblib files are code: only files inside the model directory whose sha256
matches their metadata, written by the same scikit-learn version, are loaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from service.errors import ModelError, ModelIntegrityError, NotFound

log = logging.getLogger(__name__)

ARTIFACT = "model.joblib"
LEAN = "lean.json"  # the Pipeline compiled to plain tables (service/registry/lean.py), if linear
LEAN_ARRAYS = "lean.arrays"  # a multi-output Pipeline compiled to arrays (registry/lean_multi.py)
LEAN_FILES = (LEAN, LEAN_ARRAYS)
METADATA = "metadata.json"
POINTER = "current.json"
HISTORY = "history.jsonl"
VERSION_RE = re.compile(r"^[a-z][a-z0-9-]{0,40}-\d{8}T\d{6}Z-[0-9a-f]{8}$")
# Libraries whose exact version a pickled Pipeline depends on.
PINNED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib")
# History actions that put a version in force (a rollback takes one out).
PROMOTING_ACTIONS = frozenset({"promote", "bootstrap", "force"})
REFRESH_ACTOR = "refresh"  # history events of the automatic refresh (training/refresh.py)


def library_versions() -> dict[str, str]:
    """Installed versions, read from package metadata: importing scikit-learn just
    to learn its version would cost a serving worker about 70 MB."""
    return {lib: importlib.metadata.version(lib) for lib in PINNED_LIBRARIES}


def write_lean(pipeline: Any, directory: Path, artifact_sha256: str) -> dict[str, Any] | None:
    """Compile a linear pipeline into ``directory``: a binary spam model to plain
    tables (LEAN), a multi-output toxicity model to mapped arrays (LEAN_ARRAYS).
    Its metadata entry, or None when the pipeline has neither shape."""
    from service.registry.lean import compile_pipeline
    from service.registry.lean_multi import write_multi

    lean = compile_pipeline(pipeline)
    if lean is not None:
        path = directory / LEAN
        _atomic_write_bytes(path, orjson.dumps(lean.to_tables()))
    else:
        path = directory / LEAN_ARRAYS
        tmp = path.with_name(f".{path.name}.tmp")
        if not write_multi(pipeline, tmp):
            return None
        os.replace(tmp, path)
    return {"file": path.name, "sha256": sha256_file(path), "compiled_from": artifact_sha256}


def lean_path(directory: Path, meta: dict[str, Any]) -> Path | None:
    """The compiled file a version's metadata names, if it names one this code knows."""
    lean = meta.get("lean")
    if not isinstance(lean, dict):
        return None
    name = lean.get("file", LEAN)
    return directory / name if name in LEAN_FILES else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _remove_dir(path: Path) -> None:
    for child in path.glob("*"):
        child.unlink(missing_ok=True)
    path.rmdir()


@dataclass(frozen=True)
class LoadedModel:
    """A verified pipeline with its metadata."""

    version: str
    family: str
    pipeline: Any  # None when served from the compiled tables alone
    metadata: dict[str, Any]
    lean: Any = None  # LeanScorer (from LEAN) or MultiLean (from LEAN_ARRAYS), when compiled

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.metadata["thresholds"])


class Registry:
    """The model directory. Every path it opens is checked to lie inside it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    # --- paths -------------------------------------------------------------
    def version_dir(self, version: str) -> Path:
        if not VERSION_RE.match(version):
            raise ModelIntegrityError(f"{version!r} is not a model version name")
        path = (self.root / version).resolve()
        if path.parent != self.root:
            raise ModelIntegrityError(f"model {version!r} is outside {self.root}")
        return path

    # --- writing -----------------------------------------------------------
    def save(self, pipeline: Any, metadata: dict[str, Any], family: str = "spam") -> str:
        """Write a new version; returns its name. Never touches the current pointer."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        tmp_dir = Path(tempfile.mkdtemp(dir=self.root, prefix=".incoming-"))
        try:
            import joblib  # here, not at import: a worker serving compiled files never needs it

            joblib.dump(pipeline, tmp_dir / ARTIFACT, compress=3)
            digest = sha256_file(tmp_dir / ARTIFACT)
            version = f"{family}-{stamp}-{digest[:8]}"
            metadata = {k: v for k, v in metadata.items() if k != "lean"}  # never a stale one
            lean = write_lean(pipeline, tmp_dir, digest)
            if lean is not None:
                metadata["lean"] = lean
            meta = {
                **metadata,
                "version": version,
                "family": family,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "artifact": ARTIFACT,
                "sha256": digest,
                "libraries": library_versions(),
            }
            (tmp_dir / METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True))
            target = self.version_dir(version)
            if target.exists():  # the same artifact saved twice within a second
                _remove_dir(tmp_dir)
                return version
            os.replace(tmp_dir, target)
        except BaseException:
            _remove_dir(tmp_dir)
            raise
        return version

    # --- reading -----------------------------------------------------------
    def metadata(self, version: str) -> dict[str, Any]:
        path = self.version_dir(version) / METADATA
        if not path.is_file():
            raise NotFound(f"no model {version!r} in {self.root}")
        try:
            meta: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelIntegrityError(f"metadata of {version!r} is unreadable: {exc}") from exc
        return meta

    def versions(self, family: str | None = None) -> list[dict[str, Any]]:
        """Metadata of every saved version, oldest first."""
        if not self.root.is_dir():
            return []
        out = []
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and VERSION_RE.match(child.name) and (child / METADATA).is_file():
                try:
                    meta = self.metadata(child.name)
                except ModelError:
                    continue
                if family is None or meta.get("family") == family:
                    out.append(meta)
        return sorted(out, key=lambda m: str(m.get("created_at", "")))

    def verify(self, version: str) -> dict[str, Any]:
        """Check checksum and library versions; return the metadata."""
        meta = self.metadata(version)
        artifact = self.version_dir(version) / ARTIFACT
        if not artifact.is_file():
            raise ModelIntegrityError(f"model {version!r} has no {ARTIFACT}")
        actual = sha256_file(artifact)
        if actual != meta.get("sha256"):
            raise ModelIntegrityError(
                f"model {version!r}: sha256 of {ARTIFACT} is {actual[:12]}…, "
                f"metadata says {str(meta.get('sha256'))[:12]}… (file changed or corrupt)"
            )
        saved = meta.get("libraries", {})
        current = library_versions()
        for lib in PINNED_LIBRARIES:
            if lib == "scikit-learn" and saved.get(lib) != current[lib]:
                raise ModelIntegrityError(
                    f"model {version!r} was trained with scikit-learn {saved.get(lib)}, "
                    f"this process runs {current[lib]}: retrain it"
                )
        return meta

    def compiled(self, version: str) -> bool:
        """Whether ``version`` has its compiled file (cheap: no hashing, no unpickling)."""
        path = lean_path(self.version_dir(version), self.metadata(version))
        return path is not None and path.is_file()

    def compile(self, version: str) -> bool:
        """Add compiled tables to a version saved without them (before they existed).
        False when the model is not a linear pipeline, or already compiled."""
        if self.compiled(version):
            return False
        loaded = self.load(version)
        meta = loaded.metadata
        lean = write_lean(loaded.pipeline, self.version_dir(version), str(meta["sha256"]))
        if lean is None:
            return False
        _atomic_write(self.version_dir(version) / METADATA,
                      json.dumps({**meta, "lean": lean}, indent=2, sort_keys=True))
        return True

    def load_serving(self, version: str) -> LoadedModel:
        """What the web service loads: the compiled form when the version has it
        (verified like the artifact, no unpickling, no scikit-learn), else :meth:`load`."""
        meta = self.verify(version)
        lean = meta.get("lean")
        path = lean_path(self.version_dir(version), meta)
        if not isinstance(lean, dict) or path is None:
            return self._unpickle(version, meta)
        if not path.is_file():  # e.g. fetched from the database registry: artifact only
            return self._unpickle(version, meta)
        if sha256_file(path) != lean.get("sha256"):
            raise ModelIntegrityError(
                f"model {version!r}: sha256 of {path.name} differs from its metadata "
                "(file changed)")
        if lean.get("compiled_from") != meta.get("sha256"):
            raise ModelIntegrityError(
                f"model {version!r}: {path.name} was compiled from another {ARTIFACT} "
                f"than the one its metadata names")
        try:
            scorer = _read_lean(path)
        except ValueError as exc:  # another layout or other signals: compile it afresh
            log.info("model.tables_skipped", extra={"version": version, "why": str(exc)})
            return self._unpickle(version, meta)
        except (KeyError, TypeError, IndexError) as exc:
            raise ModelIntegrityError(
                f"model {version!r}: {path.name} is malformed: {exc}") from exc
        return LoadedModel(version, str(meta.get("family", "spam")), None, meta, scorer)

    def load(self, version: str) -> LoadedModel:
        """Verify and unpickle a version. Raises :class:`ModelError`."""
        return self._unpickle(version, self.verify(version))

    def _unpickle(self, version: str, meta: dict[str, Any]) -> LoadedModel:
        """The pipeline of a version whose metadata ``verify`` returned."""
        import joblib  # about 8 MB of resident memory a serving worker does without

        try:
            pipeline = joblib.load(self.version_dir(version) / ARTIFACT)
        except Exception as exc:  # any unpickling failure means "not loadable"
            raise ModelIntegrityError(f"model {version!r} failed to unpickle: {exc}") from exc
        return LoadedModel(version, str(meta.get("family", "spam")), pipeline, meta)

    # --- the current pointer -----------------------------------------------
    def pointer_path(self) -> Path:
        return self.root / POINTER

    def pointers(self) -> dict[str, str]:
        try:
            data = json.loads(self.pointer_path().read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ModelIntegrityError(f"{self.pointer_path()} is unreadable: {exc}") from exc
        return {str(k): str(v) for k, v in data.items()}

    def current(self, family: str = "spam") -> str | None:
        return self.pointers().get(family)

    def set_current(self, version: str, *, action: str = "promote", actor: str = "cli",
                    detail: dict[str, Any] | None = None) -> None:
        """Point ``family`` at ``version`` atomically and append to the history
        (``detail``: what a forced promotion overrode, the gate's figures)."""
        meta = self.verify(version)
        family = str(meta.get("family", "spam"))
        pointers = self.pointers()
        previous = pointers.get(family)
        pointers[family] = version
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.pointer_path(), json.dumps(pointers, indent=2, sort_keys=True))
        event: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "action": action,
            "family": family,
            "version": version,
            "previous": previous,
            "actor": actor,
        }
        if detail:
            event["detail"] = detail
        with (self.root / HISTORY).open("a") as fh:
            fh.write(json.dumps(event) + "\n")

    def note(self, version: str, action: str, *, actor: str = "cli",
             detail: dict[str, Any] | None = None) -> None:
        """Append an event that moves no pointer (a refresh the gate refused)."""
        meta = self.metadata(version)
        event = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "action": action,
            "family": str(meta.get("family", "spam")),
            "version": version,
            "previous": self.current(str(meta.get("family", "spam"))),
            "actor": actor,
            "detail": detail or {},
        }
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / HISTORY).open("a") as fh:
            fh.write(json.dumps(event) + "\n")

    def history(self) -> list[dict[str, Any]]:
        path = self.root / HISTORY
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def rollback(self, family: str = "spam", actor: str = "cli") -> str:
        """Point ``family`` at the version that served before the current one.

        Walks the promotion history as a stack: a rollback undoes the latest
        promotion still in force, so rolling back twice goes two versions back.
        """
        previous = rollback_target(self.history(), family)
        self.set_current(previous, action="rollback", actor=actor)
        return previous

    def pointer_token(self, family: str = "spam") -> object:
        """Something cheap that changes whenever the pointer may have moved."""
        try:
            return self.pointer_path().stat().st_mtime_ns
        except OSError:
            return None


def _read_lean(path: Path) -> Any:
    """The scorer a compiled file holds; ValueError when this code reads another layout."""
    if path.name == LEAN_ARRAYS:
        from service.registry.lean_multi import MultiLean

        return MultiLean.load(path)
    from service.registry.lean import LeanScorer

    return LeanScorer.from_tables(orjson.loads(path.read_bytes()))


def refused_by_gate(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The gate's figures when this version's gate refused it, else None.

    A version trained before the gate recorded anything, or with no serving model
    to compare with, was not refused."""
    gate = meta.get("gate")
    if not isinstance(gate, dict) or gate.get("passed", True):
        return None
    overall = {
        side: (gate.get(side) or {}).get("overall") for side in ("candidate", "serving")
    }
    return {
        "gate_passed": False,
        "serving_version": gate.get("serving_version"),
        "reasons": list(gate.get("reasons") or []),
        **{f"{side}_overall": m for side, m in overall.items() if m},
    }


def refresh_counts(history: list[dict[str, Any]]) -> tuple[dict[str, int], float]:
    """(automatic refreshes by outcome, Unix time of the last one, 0 if none)."""
    counts = {"promoted": 0, "refused": 0}
    last = 0.0
    for e in history:
        if e.get("actor") != REFRESH_ACTOR:
            continue
        counts["refused" if e.get("action") == "refused" else "promoted"] += 1
        try:
            last = max(last, datetime.fromisoformat(str(e.get("at"))).timestamp())
        except ValueError:
            continue
    return counts, last


def promotion_stack(events: list[dict[str, Any]], family: str) -> list[str]:
    """Versions in force, oldest first: promotions push, rollbacks pop."""
    stack: list[str] = []
    for e in events:
        if e.get("family") != family:
            continue
        version = str(e["version"])
        if e.get("action") == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
        elif e.get("action") in PROMOTING_ACTIONS and (not stack or stack[-1] != version):
            stack.append(version)
    return stack


def rollback_target(events: list[dict[str, Any]], family: str) -> str:
    stack = promotion_stack(events, family)
    if len(stack) < 2:
        raise NotFound(f"no earlier {family} model to roll back to")
    return stack[-2]
