"""The retraining report's pictures (training/report.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

from training.report import _plots

THRESHOLDS = {"unsure": 0.2, "spam": 0.7, "discard": 0.99}


def test_one_class_held_out_draws_without_a_warning(tmp_path: Path) -> None:
    """A site whose newest labels were all spam: no precision-recall curve, and no
    matplotlib warning about an empty legend on the operator's terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _plots(tmp_path, [1, 1, 1], [0.9, 0.8, 0.3], [0.7, 0.6, 0.5], THRESHOLDS)
    for name in ("report-pr.png", "report-confusion.png", "report-histogram.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_both_classes_draw_both_models(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _plots(tmp_path, [1, 0, 1, 0], [0.9, 0.1, 0.8, 0.4], [0.7, 0.2, 0.6, 0.5], THRESHOLDS)
    assert (tmp_path / "report-pr.png").stat().st_size > 1000
