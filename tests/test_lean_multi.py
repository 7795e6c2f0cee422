"""The toxicity model served from mapped arrays: the same numbers as scikit-learn.

Every process that maps a version's ``lean.arrays`` shares its pages
(docs/performance.md, "Every model shared"); what these tests hold is that the
arrays answer exactly what the pickled pipeline answers: probabilities and span
scores within 1e-9, the same words, and no scikit-learn in a process that serves
them.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from procs import modules_after

from service.cli.context import Context
from service.cli.main import compile_current, main
from service.errors import ModelError, ModelIntegrityError
from service.registry.arrays import ArrayFileError, MappedArrays, TermTable, write_arrays
from service.registry.lean_multi import FILE, MultiLean, compile_multi
from service.registry.versions import ARTIFACT, METADATA, Registry, sha256_file
from service.scoring.model import load_scorer
from service.scoring.toxicity import ToxicityScorer, load_toxicity_scorer, toxic_spans
from training.toxicity import default_data_dir, span_scores

WITH_TOXICITY_MODEL = True  # conftest's model_dir adds the toxicity family
TOLERANCE = 1e-9

TEXTS = [
    "You are an idiot and your article is garbage",
    "Thanks for the thoughtful piece, the council vote was close.",
    "I am 56 years old, I am not your stupid junior pal. What you say makes no sense.",
    "Shut UP!!! http://example.com/a?b=1 12345 nobody cares 🙄 stupid stupid stupid",
    "don't you dare, you moron moron moron",
    "ｆｕｌｌ ｗｉｄｔｈ idiot and s t u p i d spaced out",
    "lone surrogate \ud800 idiot",
    "Спасибо за статью, идиот",
    "🙂",
    "a",
    "x" * 300,
]


def corpus_texts(n: int) -> list[str]:
    """The first ``n`` comments of the Toxic Spans trial file (held out from training)."""
    path = default_data_dir() / "toxic_spans_tsd_trial.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [row["text"] for row in rows[:n]]


@pytest.fixture
def toxicity_version(model_dir: Path) -> str:
    version = Registry(model_dir).current("toxicity")
    assert version is not None
    return version


# --- the term table and the array file ---------------------------------------------


def test_term_table_finds_exactly_what_it_holds() -> None:
    # "plumless" and "buckeroo" share a CRC-32: the bytes decide, not the key.
    terms = ["plumless", "idiot", "", "l'été", "🙄", "lone \ud800", "you idiot"]
    arrays, order = TermTable.build(terms)
    table = TermTable(arrays["keys"], arrays["offsets"], arrays["blob"])
    rows = table.find(terms)
    assert [terms[order[r]] for r in rows] == terms
    assert table.find(["buckeroo", "idiots", "Idiot", "you  idiot", "\ud800"]) == [-1] * 5
    assert table.find([]) == []
    both, order = TermTable.build(["buckeroo", "x", "plumless"])
    table = TermTable(both["keys"], both["offsets"], both["blob"])
    found = table.find(["plumless", "buckeroo", "x"])
    assert [["buckeroo", "x", "plumless"][order[r]] for r in found] == ["plumless", "buckeroo", "x"]


def test_term_table_refuses_repeated_terms() -> None:
    with pytest.raises(ValueError, match="distinct"):
        TermTable.build(["a", "b", "a"])


def test_array_file_round_trip_is_mapped_read_only(tmp_path: Path) -> None:
    path = tmp_path / "t.arrays"
    arrays = {"w": np.arange(12, dtype=np.float64).reshape(4, 3), "k": np.array([3, 1], np.uint32),
              "empty": np.zeros(0, dtype=np.uint8)}
    write_arrays(path, arrays, {"kind": "test", "n": 4})
    mapped = MappedArrays(path)
    assert mapped.meta == {"kind": "test", "n": 4}
    for name, array in arrays.items():
        assert np.array_equal(mapped[name], array) and mapped[name].dtype == array.dtype
        assert not mapped[name].flags.writeable
        assert mapped[name].ctypes.data % 64 == 0 or mapped[name].size == 0
    with pytest.raises(ArrayFileError):
        mapped["missing"]


def test_a_file_that_is_not_an_array_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.arrays"
    path.write_bytes(b"not arrays at all, not at all")
    with pytest.raises(ArrayFileError):
        MappedArrays(path)


# --- the compiled model against scikit-learn ----------------------------------------


def test_compiled_probabilities_and_spans_equal_scikit_learns(
    model_dir: Path, toxicity_version: str
) -> None:
    registry = Registry(model_dir)
    pipeline = registry.load(toxicity_version).pipeline
    scorer = load_toxicity_scorer(registry, toxicity_version)
    assert scorer.model.pipeline is None and isinstance(scorer.lean, MultiLean)
    texts = TEXTS + corpus_texts(150)
    rows, scores = scorer.score(texts)
    expected = pipeline.predict_proba(texts)
    got = np.array([[s[a] for a in scorer.attributes] for s in scores])
    assert np.abs(got - expected).max() < TOLERANCE
    for text, row in zip(texts, rows, strict=True):
        for attribute in scorer.attributes:
            reference = span_scores(pipeline, text, attribute, scorer.span_threshold)
            spans = scorer.spans(text, row, attribute)
            assert [(s.begin, s.end) for s in spans] == [(b, e) for b, e, _ in reference]
            for span, (_, _, score) in zip(spans, reference, strict=True):
                assert abs(span.score - score) < TOLERANCE, (text, attribute)


def test_spans_asked_twice_of_one_row_agree(model_dir: Path, toxicity_version: str) -> None:
    scorer = load_toxicity_scorer(Registry(model_dir), toxicity_version)
    text = TEXTS[2]
    rows, _ = scorer.score([text])
    first = scorer.spans(text, rows[0], "TOXICITY")
    for attribute in scorer.attributes:
        scorer.spans(text, rows[0], attribute)
    assert scorer.spans(text, rows[0], "TOXICITY") == first
    assert toxic_spans(text, first) == toxic_spans(text, scorer.spans(text, rows[0], "TOXICITY"))


def test_compiling_in_memory_gives_the_mapped_files_numbers(
    model_dir: Path, toxicity_version: str
) -> None:
    registry = Registry(model_dir)
    compiled = compile_multi(registry.load(toxicity_version).pipeline)
    assert compiled is not None
    in_memory = MultiLean(*compiled)
    mapped = MultiLean.load(model_dir / toxicity_version / FILE)
    for text in TEXTS:
        expected = in_memory.probabilities(in_memory.row(text))
        assert mapped.probabilities(mapped.row(text)) == expected


def test_a_spam_pipeline_does_not_compile_to_arrays(model_dir: Path) -> None:
    registry = Registry(model_dir)
    spam = registry.current("spam")
    assert spam is not None
    assert compile_multi(registry.load(spam).pipeline) is None


# --- the registry -------------------------------------------------------------------


def test_a_toxicity_version_is_saved_with_its_arrays(
    model_dir: Path, toxicity_version: str
) -> None:
    meta = Registry(model_dir).metadata(toxicity_version)
    path = model_dir / toxicity_version / FILE
    assert meta["lean"] == {"file": FILE, "sha256": sha256_file(path),
                            "compiled_from": meta["sha256"]}
    served = Registry(model_dir).load_serving(toxicity_version)
    assert served.pipeline is None and isinstance(served.lean, MultiLean)


def test_a_toxicity_version_saved_without_arrays_serves_and_can_be_compiled(
    model_dir: Path, toxicity_version: str
) -> None:
    registry = Registry(model_dir)
    _strip_arrays(model_dir, toxicity_version)
    assert not registry.compiled(toxicity_version)
    scorer = load_toxicity_scorer(registry, toxicity_version)  # compiled at load, in memory
    assert scorer.model.pipeline is None
    _, [before] = scorer.score([TEXTS[0]])
    assert registry.compile(toxicity_version) is True
    assert registry.compiled(toxicity_version) and registry.compile(toxicity_version) is False
    _, [after] = load_toxicity_scorer(registry, toxicity_version).score([TEXTS[0]])
    assert before == after


def _strip_arrays(model_dir: Path, version: str) -> None:
    """Make ``version`` look saved before compiled files existed."""
    meta_path = model_dir / version / METADATA
    meta = json.loads(meta_path.read_text())
    del meta["lean"]
    meta_path.write_text(json.dumps(meta))
    (model_dir / version / FILE).unlink()


def test_promote_compiles_an_older_toxicity_version(
    model_dir: Path, toxicity_version: str, tmp_path: Path
) -> None:
    _strip_arrays(model_dir, toxicity_version)
    env = {"COMMENTMOD_MODEL_DIR": str(model_dir), "COMMENTMOD_DATA_DIR": str(tmp_path / "var"),
           "COMMENTMOD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    result = CliRunner().invoke(main, ["models", "promote", toxicity_version], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert Registry(model_dir).compiled(toxicity_version)


def test_serve_compiles_the_current_models_before_gunicorn(
    model_dir: Path, toxicity_version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _strip_arrays(model_dir, toxicity_version)
    monkeypatch.setenv("COMMENTMOD_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("COMMENTMOD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    compile_current(Context())
    assert Registry(model_dir).compiled(toxicity_version)
    assert load_toxicity_scorer(Registry(model_dir), toxicity_version).model.pipeline is None


def test_changed_arrays_are_refused(model_dir: Path, toxicity_version: str) -> None:
    path = model_dir / toxicity_version / FILE
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        Registry(model_dir).load_serving(toxicity_version)
    with pytest.raises(ModelError):
        load_toxicity_scorer(Registry(model_dir), toxicity_version)


def test_the_families_refuse_each_others_models(model_dir: Path, toxicity_version: str) -> None:
    registry = Registry(model_dir)
    with pytest.raises(ModelError, match="not a binary spam model"):
        load_scorer(registry, toxicity_version)
    spam = registry.current("spam")
    assert spam is not None
    with pytest.raises(ModelError, match="not toxicity"):
        load_toxicity_scorer(registry, spam)
    with pytest.raises(ModelError, match="not a multi-output"):
        ToxicityScorer(registry.load_serving(spam))


def test_artifact_is_still_verified_before_the_arrays_serve(
    model_dir: Path, toxicity_version: str
) -> None:
    artifact = model_dir / toxicity_version / ARTIFACT
    artifact.write_bytes(artifact.read_bytes()[:-10])
    with pytest.raises(ModelIntegrityError, match="sha256"):
        Registry(model_dir).load_serving(toxicity_version)


def test_serving_toxicity_imports_no_scikit_learn(model_dir: Path, tmp_path: Path) -> None:
    """What a worker answering Perspective requests holds: the app, both models, no
    scikit-learn or SciPy (about 90 MB of resident memory per process)."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from service.app import create_app\n"
        "from service.resources import EXTENSION\n"
        "from service.scoring import toxicity\n"
        f"app = create_app({{'env': 'testing', 'model_dir': Path({str(model_dir)!r}), "
        f"'data_dir': Path({str(tmp_path / 'var')!r}), "
        f"'database_url': 'sqlite:///{tmp_path / 'db.sqlite3'}'}})\n"
        "scorer = toxicity.holder(app.extensions[EXTENSION]).toxicity_scorer()\n"
        "text = 'you are an idiot'\n"
        "rows, scores = scorer.score([text])\n"
        "spans = [scorer.spans(text, rows[0], a) for a in scorer.attributes]\n"
        "check = app.test_client().post('/api/v1/check', json={'content': text})\n"
        "assert check.status_code == 200\n"
    )
    loaded = modules_after(code)
    assert "service" in loaded and not loaded & {"sklearn", "scipy"}
