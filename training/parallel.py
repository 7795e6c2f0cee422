"""Featurise chunks in worker processes while the trainer fits the ones before.

Out of core, nine tenths of the CPU time goes into reading comments (the
hand-made signals and the hashed n-grams: pure Python, so threads would wait on
one another), one tenth into parsing, splitting and ``partial_fit``. A
:class:`Featuriser` with workers sends each chunk's comments to a process pool
and hands back the matrices **in the order the chunks came**, so the model
fitted is the very one a single process fits (same chunks, same order, same
``partial_fit`` calls), only sooner. At most ``workers + 1`` chunks are on their
way at once, so memory stays flat in the number of rows.

The workers are forked once the lists are loaded, so they share the loaded
tables with the trainer instead of each reading them again.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

import scipy.sparse as sp

T = TypeVar("T")


def default_workers() -> int:
    """Worker processes for featurising: one per CPU this process may run on, or none
    (everything in this process) on a single CPU, where a pool only adds copying."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cpus if cpus and cpus >= 2 else 0


def _transform(features: Any, comments: Sequence[Any]) -> sp.csr_matrix:
    return features.transform(comments)


class Featuriser:
    """``features.transform`` over a stream of chunks, in order, here or in workers."""

    def __init__(self, features: Any, workers: int = 0) -> None:
        self.features = features
        self.ahead = workers + 1
        self.pool: ProcessPoolExecutor | None = None
        if workers > 0:
            features.transform([""])  # load the lists here: forked workers share them
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = ProcessPoolExecutor(workers, mp_context=context)
            # Start the workers now, before a progress bar starts its thread.
            self.pool.submit(int).result()

    def map(self, chunks: Iterable[tuple[T, Sequence[Any]]]) -> Iterator[tuple[T, sp.csr_matrix]]:
        """``(tag, features.transform(comments))`` for each ``(tag, comments)``, in order.

        The next chunks are read from ``chunks`` (and transformed) while the caller
        works on the one it was given."""
        if self.pool is None:
            for tag, comments in chunks:
                yield tag, self.features.transform(comments)
            return
        pending: deque[tuple[T, Future[sp.csr_matrix]]] = deque()
        for tag, comments in chunks:
            pending.append((tag, self.pool.submit(_transform, self.features, comments)))
            if len(pending) > self.ahead:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> Featuriser:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
