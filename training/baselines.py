"""Baselines that commentmod's model is measured against, on the same folds.

- :func:`bogofilter_fit_predict`: Debian's Bayesian filter driven as a real
  program. Each call gets a fresh word list in a temporary directory, registers
  the training texts as spam (``-s``) or ham (``-n``) from two mbox files and
  classifies the test texts (``-M -T``). Its own verdict decides (``S`` is
  spam; ``U``nsure and ``H`` are not), its spamicity gives the ROC AUC.
- :func:`tfidf_lr_fit_predict`: the plain word + character TF-IDF logistic
  regression on the raw text, without normalisation, placeholders or signals.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from training.datasets import Example

BOGOFILTER = "bogofilter"
_MBOX_FROM = "From commentmod@localhost Thu Jan  1 00:00:00 1970"


class BaselineError(RuntimeError):
    """A baseline program is missing or failed; the message says which and why."""


def bogofilter_available() -> bool:
    return shutil.which(BOGOFILTER) is not None


def to_mbox(texts: Sequence[str]) -> str:
    """Texts as one mbox: one message each, ``From `` lines in a body escaped."""
    out = []
    for text in texts:
        body = "\n".join(
            ">" + line if line.startswith("From ") else line for line in text.splitlines()
        )
        out.append(f"{_MBOX_FROM}\n\n{body or '.'}\n\n")
    return "".join(out)


def _bogofilter(wordlists: Path, args: list[str], mbox: Path) -> str:
    cmd = [BOGOFILTER, "-C", "-d", str(wordlists), "-M", *args, "-I", str(mbox)]
    try:
        # fixed argv: the bogofilter binary and our temp paths, texts go to stdin
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603 - fixed argv
    except FileNotFoundError as exc:
        raise BaselineError("bogofilter is not installed (apt-get install bogofilter)") from exc
    if done.returncode not in (0, 1, 2):  # 0 spam, 1 ham, 2 unsure, 3 error
        raise BaselineError(f"bogofilter {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def bogofilter_classify(
    train: Sequence[Example], test: Sequence[Example]
) -> list[tuple[str, float]]:
    """(verdict S/H/U, spamicity) for each test text, trained on ``train`` only."""
    with tempfile.TemporaryDirectory(prefix="commentmod-bogo-") as tmp:
        root = Path(tmp)
        wordlists = root / "wordlists"
        wordlists.mkdir()
        for flag, label in (("-s", 1), ("-n", 0)):
            texts = [e.comment.content for e in train if e.label == label]
            if texts:
                path = root / f"train{label}.mbox"
                path.write_text(to_mbox(texts), encoding="utf-8")
                _bogofilter(wordlists, [flag], path)
        path = root / "test.mbox"
        path.write_text(to_mbox([e.comment.content for e in test]), encoding="utf-8")
        lines = _bogofilter(wordlists, ["-T"], path).splitlines()
    out = []
    for line in lines:
        verdict, _, score = line.partition(" ")
        out.append((verdict, float(score)))
    if len(out) != len(test):
        raise BaselineError(f"bogofilter classified {len(out)} of {len(test)} texts")
    return out


def bogofilter_fit_predict(
    train: Sequence[Example], test: Sequence[Example]
) -> tuple[list[float], list[int]]:
    """Spamicities (for ROC AUC) and bogofilter's own verdicts (1 when it says S)."""
    results = bogofilter_classify(train, test)
    return [s for _, s in results], [int(v == "S") for v, _ in results]


def tfidf_lr_fit_predict(train: Sequence[Example], test: Sequence[Example]) -> list[float]:
    """Word (1-2) + char_wb (2-5) TF-IDF on the raw text, logistic regression."""
    vectorisers = [
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    ]
    train_texts = [e.comment.content for e in train]
    test_texts = [e.comment.content for e in test]
    X = sp.hstack([v.fit_transform(train_texts) for v in vectorisers], format="csr")
    Z = sp.hstack([v.transform(test_texts) for v in vectorisers], format="csr")
    clf = LogisticRegression(C=10.0, solver="liblinear", max_iter=2000)
    clf.fit(X, np.asarray([e.label for e in train]))
    return [float(p) for p in clf.predict_proba(Z)[:, 1]]
