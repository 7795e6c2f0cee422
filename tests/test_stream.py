"""Streaming training data: bounded reading, the split drawn while streaming, progress.

How flat the memory of a real million-row run stays is measured by
bench/training.py, not here: these tests check the mechanism on small data.
"""

from __future__ import annotations

import json
import random
import weakref
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from click.testing import CliRunner

from service.cli.main import main
from service.registry.versions import Registry
from training.datasets import Example, iter_dataset
from training.features import Comment
from training.retrain import train_out_of_core
from training.stream import (
    RowProgress,
    Source,
    StreamSplit,
    chunked,
    estimate_rows,
    file_sources,
    key_hash,
)

SPAM = ["buy cheap pills now http://bit.ly/p", "check out my channel subscribe",
        "win a free iphone click here", "make money fast visit my site"]
HAM = ["the council vote was close", "great reporting on the budget",
       "I disagree with the mayor here", "thanks for covering the school story"]


def write_csv(path: Path, rows: int) -> Path:
    lines = ["content,label"]
    for i in range(rows):
        text = (SPAM if i % 2 else HAM)[i % 4]
        lines.append(f"{text} number {i},{'spam' if i % 2 else 'ham'}")
    path.write_text("\n".join(lines) + "\n")
    return path


class Alive:
    """Counts the examples a generator handed out that are still referenced somewhere."""

    def __init__(self) -> None:
        self.handed_out = 0
        self.alive = 0
        self.most_alive = 0

    def _gone(self) -> None:
        self.alive -= 1

    def watch(self, examples: Iterator[Example]) -> Iterator[Example]:
        for ex in examples:
            self.handed_out += 1
            self.alive += 1
            self.most_alive = max(self.most_alive, self.alive)
            weakref.finalize(ex, self._gone)
            yield ex


@pytest.mark.parametrize("workers", [0, 2])
def test_out_of_core_training_never_holds_more_than_a_chunk(tmp_path: Path, workers: int) -> None:
    data = write_csv(tmp_path / "rows.csv", 3_000)
    alive = Alive()
    source = Source("rows.csv", 3_000, True, lambda: alive.watch(iter_dataset(data)))
    chunk, cap = 200, 100
    result = train_out_of_core([source], Registry(tmp_path / "models"), description=["t"],
                               progress=False, chunk=chunk, test_cap=cap, workers=workers)
    assert alive.handed_out == 3_000
    assert result.summary["test"] == cap and result.summary["train"] == 3_000 - cap
    # The chunk being filled, plus the held-out examples (bounded by the cap): never the file.
    assert alive.most_alive <= chunk + cap, alive.most_alive


def test_worker_processes_fit_the_very_model_one_process_fits(tmp_path: Path) -> None:
    """Chunks featurised in workers come back in order: same partial_fit calls, same model."""
    data = write_csv(tmp_path / "rows.csv", 2_000)
    models = []
    for workers in (0, 2):
        registry = Registry(tmp_path / f"models-{workers}")
        result = train_out_of_core(file_sources([data]), registry, description=["t"],
                                   progress=False, chunk=150, test_cap=200, workers=workers)
        clf = joblib.load(registry.version_dir(result.version) / "model.joblib").named_steps["clf"]
        models.append((clf, result))
    (one, one_result), (pooled, pooled_result) = models
    assert np.array_equal(one.coef_, pooled.coef_)
    assert np.array_equal(one.intercept_, pooled.intercept_)
    assert one_result.summary["sha256"] == pooled_result.summary["sha256"]
    # As JSON: with under 100 held-out comments above 0.99 nothing is discarded and
    # precision_at_discard is NaN, which no dict comparison finds equal to itself.
    assert (json.dumps(one_result.gate.candidate, sort_keys=True)
            == json.dumps(pooled_result.gate.candidate, sort_keys=True))


def test_chunked_yields_lists_of_at_most_size() -> None:
    sizes = [len(c) for c in chunked((Example(Comment(content=str(i)), 0, "t")
                                      for i in range(45)), 20)]
    assert sizes == [20, 20, 5]


def ex(text: str, label: int) -> Example:
    return Example(Comment(content=text), label, "t")


def test_split_folds_duplicates_first_label_wins_and_never_crosses() -> None:
    split = StreamSplit(0.3, cap=1_000)
    train = split.take([ex("Hello  World", 1), ex("hello world", 0), ex("other", 0)])
    train += split.take([ex("HELLO WORLD", 0)] + [ex(f"text {i}", i % 2) for i in range(200)])
    test = split.test
    assert split.folded == 2 and split.distinct == 202
    assert len(train) + len(test) == 202
    assert not {e.key for e in train} & {e.key for e in test}
    [hello] = [e for e in train + test if e.key == "hello world"]
    assert hello.label == 1  # the first one seen
    assert 30 < len(test) < 100


def test_held_out_side_is_capped_order_free_and_pushed_out_ones_train() -> None:
    examples = [ex(f"comment {i}", i % 2) for i in range(2_000)]
    shuffled = examples[:]
    random.Random(3).shuffle(shuffled)
    tests = []
    for order in (examples, shuffled):
        split = StreamSplit(0.5, cap=50)
        train = [e for c in chunked(order, 128) for e in split.take(c)]
        assert len(split.test) == 50 and len(train) == 2_000 - 50
        assert split.test == sorted(split.test, key=key_hash)
        tests.append([e.key for e in split.test])
    assert tests[0] == tests[1]  # the 50 smallest hashes, whatever the order
    smallest = sorted(examples, key=key_hash)[:50]
    assert tests[0] == [e.key for e in smallest]


@pytest.mark.parametrize(("name", "text", "rows"), [
    ("a.csv", "content,label\nx,spam\ny,ham\n", 2),
    ("b.csv", "content,label\nx,spam\ny,ham", 2),  # no newline at the end
    ("c.jsonl", '{"content": "x", "label": 1}\n{"content": "y", "label": 0}\n', 2),
    ("d.tsv", "ham\thello\nspam\twin\nham\tbye\n", 3),
    ("e.csv", "content,label\n", 0),
])
def test_estimate_rows(tmp_path: Path, name: str, text: str, rows: int) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert estimate_rows(path) == rows
    assert estimate_rows(path) == len(list(iter_dataset(path)))


def test_a_directory_is_one_source_per_csv(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", 10)
    write_csv(tmp_path / "b.csv", 20)
    (tmp_path / "notes.txt").write_text("not data")
    sources = file_sources([tmp_path])
    assert [(Path(s.name).name, s.rows) for s in sources] == [("a.csv", 10), ("b.csv", 20)]


def test_progress_counts_chunks_of_an_estimate_and_corrects_it(tmp_path: Path) -> None:
    sources = [Source("a", 45_000, False, iter), Source("b", 10, True, iter)]
    progress = RowProgress("reading", sources, 20_000, enabled=True)
    progress.add(20_000)
    assert progress.bar.postfix == "chunk 1/3 (estimated)"
    progress.add(20_000)
    progress.add(20_000)  # more rows than estimated: the total grows to what was read
    assert progress.bar.total == 60_000 and progress.bar.postfix == "chunk 3/3 (estimated)"
    progress.add(5)
    progress.close()
    assert progress.bar.total == 60_005 and progress.bar.postfix == "4 chunks"


def test_train_shows_rows_chunks_and_the_gate_on_stderr_only(tmp_path: Path,
                                                             model_dir: Path) -> None:
    data = write_csv(tmp_path / "rows.csv", 400)
    env = {"COMMENTMOD_MODEL_DIR": str(model_dir), "COMMENTMOD_DATA_DIR": str(tmp_path / "var"),
           "COMMENTMOD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    r = CliRunner().invoke(main, ["train", "--data", str(data), "--out-of-core", "--no-labels"],
                           env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("trained ")
    for shown in ("training (out of core)", "400/400", "rows/s", "1 chunk]",
                  "gate: candidate on", "gate: serving model", "gate: saving model"):
        assert shown in r.stderr, (shown, r.stderr)
    quiet = CliRunner().invoke(main, ["train", "--data", str(data), "--out-of-core", "--json",
                                      "--no-labels"], env=env, catch_exceptions=False)
    assert quiet.stderr == ""
    assert json.loads(quiet.stdout)["trainer"] == "out-of-core"
