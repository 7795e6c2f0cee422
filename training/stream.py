"""Training data as streams, so that memory does not grow with the number of rows.

Every source (stored labels, ``--data`` files, the shipped set) is a
:class:`Source`: a row count, known or estimated without reading the rows, and
a generator of examples. :func:`chunked` cuts the joined stream into lists of
at most ``size`` examples; nothing upstream holds more than the row being
parsed. :class:`StreamSplit` folds duplicates and draws the held-out side while
the rows go by. :func:`row_bar` and :func:`step_bar` show progress on stderr.
"""

from __future__ import annotations

import hashlib
import heapq
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from training.datasets import Example, dataset_files, iter_dataset, shipped_base

BLOCK = 1 << 20  # bytes read at a time when counting a file's lines


@dataclass(frozen=True)
class Source:
    """One stream of examples and how many rows it will give (``exact`` or an estimate)."""

    name: str
    rows: int
    exact: bool
    examples: Callable[[], Iterator[Example]] = field(repr=False)


def estimate_rows(path: Path) -> int:
    """Rows of a data file from its line count, read in fixed blocks (a few ms per 10 MB).

    Exact for JSONL and TSV without blank lines and for CSV without line breaks
    inside quoted fields; otherwise an overestimate, which progress corrects."""
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    with path.open("rb") as fh:
        first = fh.readline().lstrip()
    header = path.suffix != ".jsonl" and not first.startswith(b"{") and \
        first.split(b"\t", 1)[0] not in {b"ham", b"spam"}
    return max(lines - header, 0)


def file_sources(paths: Sequence[Path]) -> list[Source]:
    """A source per file (a directory gives one per CSV in it); missing files fail here."""
    return [
        Source(str(f), estimate_rows(f), False, partial(iter_dataset, f))
        for path in paths
        for f in dataset_files(path)
    ]


def shipped_source() -> Source:
    """The shipped base set: a few thousand rows, fixed, so it is read whole."""
    examples = shipped_base()
    return Source("shipped base set", len(examples), True, lambda: iter(examples))


def labels_source(store: Any, chunk: int) -> Source:
    """Stored labels, read from the database ``chunk`` rows at a time.

    The count is an upper bound (labels that training leaves out are counted)."""
    from training.labels import count_labels, iter_label_chunks

    def examples() -> Iterator[Example]:
        for rows in iter_label_chunks(store, chunk):
            for s in rows:
                yield s.example

    return Source("stored labels", count_labels(store), False, examples)


def chain(sources: Sequence[Source]) -> Iterator[Example]:
    for source in sources:
        yield from source.examples()


def chunked(examples: Iterable[Example], size: int) -> Iterator[list[Example]]:
    """Lists of at most ``size`` examples; only the one being filled is held here."""
    batch: list[Example] = []
    for ex in examples:
        batch.append(ex)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def key_hash(ex: Example) -> int:
    """64 bits of the normalised text: the identity of a text for folding and splitting."""
    return int.from_bytes(hashlib.blake2b(ex.key.encode(), digest_size=8).digest(), "big")


class StreamSplit:
    """Fold duplicates and draw the held-out side as the rows stream by.

    - A text is identified by :func:`key_hash`; the first label seen wins. The
      hashes seen are one sorted ``uint64`` array: 8 bytes per distinct text.
    - Held out: texts whose hash falls below ``fraction`` of the hash range, at
      most ``cap`` of them: the ``cap`` smallest hashes are kept, and a held-out
      text pushed out by a smaller one joins the training stream (it was never
      trained on). So the held-out set depends only on which texts the data
      holds, not on their order, no text is on both sides, and memory for it is
      bounded by ``cap``.
    """

    def __init__(self, fraction: float, cap: int) -> None:
        self.cap = cap
        self.cut = int(fraction * 2**64)  # held out: hash below this
        self.folded = 0
        self.spam = 0
        self.sources: Counter[str] = Counter()
        self.fingerprint = hashlib.sha256()
        self._seen = np.empty(0, dtype=np.uint64)
        self._heap: list[tuple[int, int, Example]] = []  # (-hash, order, example)
        self._order = 0

    @property
    def distinct(self) -> int:
        return len(self._seen)

    def _fresh(self, hashes: np.ndarray) -> np.ndarray:
        """Mask of the hashes seen neither earlier in this chunk nor in any earlier one."""
        mask = np.zeros(len(hashes), dtype=bool)
        mask[np.unique(hashes, return_index=True)[1]] = True
        if len(self._seen):
            pos = np.minimum(np.searchsorted(self._seen, hashes), len(self._seen) - 1)
            mask &= self._seen[pos] != hashes
        new = np.sort(hashes[mask])
        self._seen = np.insert(self._seen, np.searchsorted(self._seen, new), new)
        return mask

    def take(self, chunk: Sequence[Example]) -> list[Example]:
        """The examples of ``chunk`` to train on now (plus held-out ones the cap pushed out)."""
        self.sources.update(ex.source for ex in chunk)
        hashes = np.fromiter((key_hash(ex) for ex in chunk), dtype=np.uint64, count=len(chunk))
        fresh = self._fresh(hashes)
        self.folded += len(chunk) - int(fresh.sum())
        train: list[Example] = []
        for i in np.flatnonzero(fresh).tolist():
            ex, h = chunk[i], int(hashes[i])
            self.fingerprint.update(h.to_bytes(8, "big") + bytes([ex.label]))
            self.spam += ex.label
            if h >= self.cut:
                train.append(ex)
                continue
            self._order += 1
            heapq.heappush(self._heap, (-h, self._order, ex))
            if len(self._heap) > self.cap:
                neg, _, pushed_out = heapq.heappop(self._heap)
                self.cut = -neg
                train.append(pushed_out)
        return train

    @property
    def test(self) -> list[Example]:
        """The held-out examples, smallest hash first (a fixed order for the report)."""
        return [ex for _, _, ex in sorted(self._heap, reverse=True)]


class RowProgress:
    """Rows parsed of the sources' total, chunks done of the known or estimated number,
    rate and ETA, on stderr (stdout stays for what scripts read)."""

    def __init__(self, desc: str, sources: Sequence[Source], chunk: int, enabled: bool) -> None:
        self.chunk = chunk
        self.exact = all(s.exact for s in sources)
        self.chunks = 0
        self.bar: tqdm[Any] = tqdm(
            total=sum(s.rows for s in sources), desc=desc, unit=" rows", unit_scale=True,
            file=sys.stderr, disable=not enabled, dynamic_ncols=True,
        )

    def add(self, rows: int) -> None:
        """One chunk of ``rows`` parsed; an estimate that fell short grows to what was read."""
        bar = self.bar
        if bar.total is not None and bar.n + rows > bar.total:
            bar.total = bar.n + rows
        self.chunks += 1
        of = max(-(-int(bar.total or 0) // self.chunk), self.chunks)
        estimated = "" if self.exact else " (estimated)"
        bar.set_postfix_str(f"chunk {self.chunks}/{of}{estimated}", refresh=False)
        bar.update(rows)

    def close(self) -> None:
        """The stream ended: what was read is the total (an overestimate shrinks to it)."""
        self.bar.total = self.bar.n
        self.bar.set_postfix_str(f"{self.chunks} chunk{'s' * (self.chunks != 1)}", refresh=False)
        self.bar.close()


class Steps:
    """Named steps of known number (the fits, the gate, saving): each one's name shows
    while it runs, with the count done and an ETA from the steps so far."""

    def __init__(self, what: str, names: Sequence[str], enabled: bool) -> None:
        self.what = what
        self.names = list(names)
        self.bar: tqdm[Any] = tqdm(total=len(names), desc=f"{what}: {self.names[0]}",
                                   unit=" step", file=sys.stderr, disable=not enabled,
                                   dynamic_ncols=True)

    def _show(self, i: int) -> None:
        if i < len(self.names):
            self.bar.set_description(f"{self.what}: {self.names[i]}")

    def done(self) -> None:
        """The current step finished; the next one's name shows."""
        self.bar.update()
        self._show(self.bar.n)
        if self.bar.n >= len(self.names):
            self.bar.set_description(f"{self.what}: done")
            self.bar.close()
