"""Readers for the labelled corpora, de-duplication, and leak-free splits.

Formats, chosen by :func:`read_dataset` from the file:

- YouTube Spam Collection CSV (``COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS``). Only
  ``CONTENT`` and ``CLASS`` are read: ``DATE`` and ``COMMENT_ID`` leak the label.
  The video (file stem) becomes the example's group.
- SMS Spam Collection TSV (``label<TAB>text``).
- Generic CSV or JSONL with ``content`` and ``label`` (``spam``/``ham``, or 1/0)
  and optionally any other :class:`~training.features.Comment` field and ``group``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from training.features import COMMENT_FIELDS, Comment, dedup_key

SHIPPED_DATA = Path(__file__).parent / "data"
YOUTUBE_DIR = SHIPPED_DATA / "youtube-spam-collection"
DISCUSSION_HAM = SHIPPED_DATA / "discussion-ham" / "discussion_ham.csv"
LINK_HAM = SHIPPED_DATA / "discussion-ham" / "discussion_ham_links.csv"
SMS_SPAM = SHIPPED_DATA / "sms-spam-collection" / "SMSSpamCollection"
# Real news-site comments no spam model trains on (the toxicity model scores its
# spans there, never trains on it): the day-one evaluation's false positives.
NEWS_COMMENTS = SHIPPED_DATA / "toxicity" / "toxic_spans_tsd_trial.csv.gz"
# Measurement-only corpora (never shipped, never copied): evaluations that say so
# read them beside the repository, as ../shared/data/eval-only/<name>/<name>.csv.
EVAL_ONLY = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "eval-only"
EVAL_ONLY_CORPORA = (
    "datacamp_blog_comments", "indonesian_sms_spam", "chinese_sms_spam_10k", "arabic_spam_tweets",
)
YOUTUBE_HEADER = ["COMMENT_ID", "AUTHOR", "DATE", "CONTENT", "CLASS"]


class DatasetError(ValueError):
    """A data file could not be read; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    comment: Comment
    label: int  # 1 spam, 0 ham
    source: str  # where it came from: file name or "labels"
    group: str = ""  # video, site...: the unit leave-one-group-out holds out

    @property
    def key(self) -> str:
        return dedup_key(self.comment.content)


def _label(raw: Any, where: str) -> int:
    value = str(raw).strip().lower()
    if value in {"spam", "1", "true"}:
        return 1
    if value in {"ham", "0", "false"}:
        return 0
    raise DatasetError(f"{where}: label {raw!r} is neither spam nor ham")


def iter_youtube(path: Path) -> Iterator[Example]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != YOUTUBE_HEADER:
            raise DatasetError(f"{path}: not a YouTube Spam Collection file")
        for i, row in enumerate(reader, start=2):
            yield Example(
                Comment(content=row["CONTENT"]),
                _label(row["CLASS"], f"{path}:{i}"),
                path.name,
                group=path.stem,
            )


def iter_sms(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            label, sep, text = line.rstrip("\n").partition("\t")
            if not sep:
                raise DatasetError(f"{path}:{i}: expected 'label<TAB>text'")
            yield Example(
                Comment(content=text), _label(label, f"{path}:{i}"), path.name, group="sms"
            )


def _from_record(row: dict[str, Any], where: str, source: str) -> Example:
    content = row.get("content")
    if not isinstance(content, str) or not content.strip():
        raise DatasetError(f"{where}: 'content' is missing or empty")
    if "label" not in row:
        raise DatasetError(f"{where}: 'label' is missing")
    fields: dict[str, Any] = {
        k: str(v) for k, v in row.items() if k in COMMENT_FIELDS and v not in (None, "")
    }
    return Example(
        Comment(**fields), _label(row["label"], where), source, group=str(row.get("group") or "")
    )


def iter_generic_csv(path: Path) -> Iterator[Example]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"content", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: a CSV needs 'content' and 'label' columns")
        for i, row in enumerate(reader, 2):
            yield _from_record(row, f"{path}:{i}", path.name)


def iter_jsonl(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DatasetError(f"{path}:{i}: not JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{i}: expected a JSON object")
            yield _from_record(row, f"{path}:{i}", path.name)


def dataset_files(path: Path) -> list[Path]:
    """The files ``path`` names: itself, or every CSV of a directory (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise DatasetError(f"{path}: no CSV files")
        return files
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    return [path]


def iter_dataset(path: Path) -> Iterator[Example]:
    """Stream one file or every YouTube CSV of a directory, sniffing each file's format.

    One row at a time: a file larger than memory can be read (the out-of-core
    trainer does). Errors name the file and line, and surface as the bad row is
    reached."""
    for file in dataset_files(path):
        try:
            yield from _iter_file(file)
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{file}: not UTF-8 ({exc})") from exc


def _iter_file(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8") as fh:
        first = fh.readline()
    if path.suffix == ".jsonl" or first.lstrip().startswith("{"):
        return iter_jsonl(path)
    if first.startswith("COMMENT_ID,"):
        return iter_youtube(path)
    if first.split("\t", 1)[0] in {"ham", "spam"}:
        return iter_sms(path)
    return iter_generic_csv(path)


def read_dataset(path: Path) -> list[Example]:
    """Read one file or every YouTube CSV of a directory (:func:`iter_dataset`, in a list)."""
    return list(iter_dataset(path))


def shipped_youtube() -> list[Example]:
    return read_dataset(YOUTUBE_DIR)


def shipped_base() -> list[Example]:
    """What the bootstrap model (and ``train``'s base set) learns from: the YouTube
    Spam Collection, the SMS Spam Collection (other kinds of spam: prizes, premium
    numbers, loans) and real discussion comments as ham, so that an ordinary news
    comment is not taken for spam (training/data/*/ATTRIBUTION.md)."""
    return [ex for _, examples in shipped_corpora() for ex in examples]


def shipped_corpora() -> list[tuple[str, list[Example]]]:
    """The shipped labelled corpora by name, each YouTube video its own corpus."""
    videos = sorted(YOUTUBE_DIR.glob("*.csv"))
    out = [(f"youtube-{p.stem.removeprefix('Youtube')}", read_dataset(p)) for p in videos]
    sms = [replace(ex, group="sms") for ex in read_dataset(SMS_SPAM)]
    ham = [replace(ex, group="discussion-ham")
           for ex in read_dataset(DISCUSSION_HAM) + read_dataset(LINK_HAM)]
    return [*out, ("sms", sms), ("discussion-ham", ham)]


def news_comments() -> list[Example]:
    """The 690 Civil Comments of the Toxic Spans trial file (CC0), as ham: rude or
    not, none is spam. Shipped, and in no spam model's training data (the
    discussion ham samples the Toxic Spans *train* file), so the day-one
    evaluation counts the false positives a news site would see on them."""
    import gzip

    with gzip.open(NEWS_COMMENTS, "rt", encoding="utf-8", newline="") as fh:
        return [Example(Comment(content=row["text"]), 0, NEWS_COMMENTS.name, "news-comments")
                for row in csv.DictReader(fh) if row["text"].strip()]


def eval_only_corpora(root: Path | None = None) -> list[tuple[str, list[Example]]]:
    """The measurement-only corpora found under ``root`` (default :data:`EVAL_ONLY`).

    Raises :class:`DatasetError` naming the directory when none is there."""
    root = EVAL_ONLY if root is None else root
    out = []
    for name in EVAL_ONLY_CORPORA:
        path = root / name / f"{name}.csv"
        if path.is_file():
            out.append((name, [replace(ex, group=name) for ex in read_dataset(path)]))
    if not out:
        raise DatasetError(f"{root}: no measurement-only corpora ({', '.join(EVAL_ONLY_CORPORA)})")
    return out


def deduplicate(examples: Iterable[Example]) -> tuple[list[Example], int]:
    """Fold examples with the same normalised text; the majority label wins (spam on ties).

    Returns the kept examples and how many were folded away.
    """
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.key, []).append(ex)
    kept = []
    for members in groups.values():
        spam = sum(ex.label for ex in members)
        label = 1 if spam * 2 >= len(members) else 0
        kept.append(replace(members[0], label=label))
    folded = sum(len(m) for m in groups.values()) - len(kept)
    return kept, folded


def holdout_split(
    examples: Sequence[Example], fraction: float = 0.2, salt: str = "commentmod"
) -> tuple[list[Example], list[Example]]:
    """Deterministic split by a hash of the normalised text: a text and its
    duplicates always land on the same side, and the split is stable across runs."""
    train: list[Example] = []
    test: list[Example] = []
    for ex in examples:
        h = int(hashlib.sha256(f"{salt}:{ex.key}".encode()).hexdigest()[:8], 16)
        (test if h / 0xFFFFFFFF < fraction else train).append(ex)
    return train, test


def group_folds(examples: Sequence[Example]) -> Iterator[tuple[str, list[Example], list[Example]]]:
    """Leave-one-group-out folds (for YouTube: leave one video out).

    A text that also appears in the held-out group is dropped from training, so
    no duplicate crosses the split.
    """
    groups = sorted({ex.group for ex in examples})
    for held in groups:
        test = [ex for ex in examples if ex.group == held]
        test_keys = {ex.key for ex in test}
        train = [ex for ex in examples if ex.group != held and ex.key not in test_keys]
        yield held, train, test


def data_fingerprint(examples: Sequence[Example]) -> str:
    """sha256 over the sorted (text, label) pairs: names the training data exactly."""
    digest = hashlib.sha256()
    for key, label in sorted((ex.key, ex.label) for ex in examples):
        digest.update(f"{label}\t{key}\n".encode())
    return digest.hexdigest()
