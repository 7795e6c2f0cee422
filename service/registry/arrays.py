"""Named numpy arrays in one file, mapped read-only, and an exact term -> row table.

A model served from arrays in a file mapped with ``mmap`` lives in the page
cache, not in a process: gunicorn's master and every worker that maps the same
file share one copy, whether the master mapped it before forking or each worker
mapped it after a new version was promoted. A worker pays only for the small
Python objects around the arrays, never for the model itself (docs/performance.md,
"Every model shared").

The file: ``MAGIC``, the header's length (8 bytes, little-endian), a JSON header
(``meta`` and each array's dtype, shape and offset), then each array C-ordered,
little-endian, at an offset aligned to ``ALIGN`` bytes.

:class:`TermTable` replaces a ``dict[str, int]`` vocabulary, which costs about 130
bytes of Python objects per term in each process that builds it, with three arrays
(about 8 bytes per term plus its text): terms sorted by a CRC-32 of their UTF-8 bytes, each
term's bytes in one blob, and their offsets. A lookup compares the bytes of every
candidate, so it is exact: a CRC collision costs a second comparison, never a
wrong row.
"""

from __future__ import annotations

import json
import mmap
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"CMARRAY1"
ALIGN = 64
ENCODING = "utf-8"
ERRORS = "surrogatepass"  # comment text from JSON may hold lone surrogates


class ArrayFileError(ValueError):
    """The file is not an array file this code reads."""


def write_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write ``arrays`` and a JSON-ready ``meta`` to ``path`` (the caller makes it atomic)."""
    layout: dict[str, dict[str, Any]] = {}
    blobs: list[tuple[int, bytes]] = []
    offset = 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array)
        dtype = data.dtype.newbyteorder("<") if data.dtype.byteorder == ">" else data.dtype
        data = data.astype(dtype, copy=False)
        offset = -(-offset // ALIGN) * ALIGN
        layout[name] = {"dtype": dtype.str, "shape": list(data.shape), "offset": offset}
        raw = data.tobytes()
        blobs.append((offset, raw))
        offset += len(raw)
    header = json.dumps({"meta": meta, "arrays": layout}, sort_keys=True).encode()
    start = -(-(len(MAGIC) + 8 + len(header)) // ALIGN) * ALIGN
    with path.open("wb") as fh:
        fh.write(MAGIC + len(header).to_bytes(8, "little") + header)
        fh.write(b"\x00" * (start - fh.tell()))
        for at, raw in blobs:
            fh.write(b"\x00" * (start + at - fh.tell()))
            fh.write(raw)


class MappedArrays:
    """The arrays of one file, as read-only views of a shared mapping."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as fh:
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        buf = self._map
        if buf[: len(MAGIC)] != MAGIC:
            raise ArrayFileError(f"{path.name} is not an array file")
        size = int.from_bytes(buf[len(MAGIC) : len(MAGIC) + 8], "little")
        try:
            header = json.loads(buf[len(MAGIC) + 8 : len(MAGIC) + 8 + size])
        except ValueError as exc:
            raise ArrayFileError(f"{path.name}: unreadable header: {exc}") from exc
        self.meta: dict[str, Any] = header["meta"]
        start = -(-(len(MAGIC) + 8 + size) // ALIGN) * ALIGN
        self.arrays: dict[str, np.ndarray] = {}
        for name, spec in header["arrays"].items():
            dtype = np.dtype(spec["dtype"])
            shape = tuple(int(n) for n in spec["shape"])
            count = int(np.prod(shape)) if shape else 1
            at = start + int(spec["offset"])
            if at + count * dtype.itemsize > len(buf):
                raise ArrayFileError(f"{path.name}: array {name!r} runs past the end")
            array = np.frombuffer(buf, dtype=dtype, count=count, offset=at).reshape(shape)
            self.arrays[name] = array  # read-only: the mapping is ACCESS_READ

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise ArrayFileError(f"the array file has no {name!r}") from None


def read_arrays(path: Path) -> MappedArrays:
    return MappedArrays(path)


def term_key(data: bytes) -> int:
    return zlib.crc32(data)


class TermTable:
    """Exact lookup of strings in a fixed set: row ``i`` is the ``i``-th term in key order.

    ``keys`` (uint32, sorted), ``offsets`` (uint32, one more than the terms) and
    ``blob`` (uint8: every term's UTF-8 bytes, in key order).
    """

    def __init__(self, keys: np.ndarray, offsets: np.ndarray, blob: np.ndarray) -> None:
        if len(offsets) != len(keys) + 1:
            raise ArrayFileError("a term table's offsets and keys differ in length")
        self.keys = keys
        self.offsets = offsets
        self.blob = blob.data  # a memoryview: slices compare with bytes without copying
        self.size = len(keys)

    @staticmethod
    def build(terms: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The table's arrays for ``terms``, and ``order``: row ``i`` of the table is
        ``terms[order[i]]`` (reorder any per-term values with it)."""
        encoded = [t.encode(ENCODING, ERRORS) for t in terms]
        if len(set(encoded)) != len(encoded):
            raise ValueError("a term table's terms must be distinct")
        keys = np.fromiter(map(term_key, encoded), dtype=np.uint32, count=len(encoded))
        order = np.argsort(keys, kind="stable")
        ordered = [encoded[i] for i in order.tolist()]
        lengths = np.fromiter(map(len, ordered), dtype=np.int64, count=len(ordered))
        total = int(lengths.sum())
        offsets = np.zeros(len(ordered) + 1, dtype=np.uint32 if total < 2**32 else np.int64)
        np.cumsum(lengths, out=offsets[1:], dtype=offsets.dtype)
        blob = np.frombuffer(b"".join(ordered), dtype=np.uint8)
        return {"keys": keys[order], "offsets": offsets, "blob": blob}, order

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> TermTable:
        return cls(arrays[f"{prefix}keys"], arrays[f"{prefix}offsets"], arrays[f"{prefix}blob"])

    def find(self, terms: Sequence[str]) -> list[int]:
        """The row of each term, or -1 where the table does not hold it."""
        n = len(terms)
        if n == 0 or self.size == 0:
            return [-1] * n
        encoded = [t.encode(ENCODING, ERRORS) for t in terms]
        keys = np.fromiter(map(term_key, encoded), dtype=np.uint32, count=n)
        pos = np.searchsorted(self.keys, keys)
        np.minimum(pos, self.size - 1, out=pos)
        candidates = np.flatnonzero(self.keys[pos] == keys)
        out = [-1] * n
        if not len(candidates):
            return out
        rows = pos[candidates]
        blob, table_keys, offsets = self.blob, self.keys, self.offsets
        starts, ends = offsets[rows].tolist(), offsets[rows + 1].tolist()
        for i, row, start, end in zip(candidates.tolist(), rows.tolist(), starts, ends,
                                      strict=True):
            data = encoded[i]
            if blob[start:end] == data:
                out[i] = row
                continue
            key = int(keys[i])  # a CRC collision: the other terms with the same key
            row += 1
            while row < self.size and int(table_keys[row]) == key:
                if blob[int(offsets[row]) : int(offsets[row + 1])] == data:
                    out[i] = row
                    break
                row += 1
        return out

    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.offsets.nbytes + len(self.blob))
