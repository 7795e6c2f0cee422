"""The training report routes: only known files of valid versions are served."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from service.registry.versions import Registry


@pytest.mark.parametrize(
    "path",
    [
        "/models/..%2F..%2Fetc/report",
        "/models/not-a-version/report",
        "/models/spam-20200101T000000Z-deadbeef/report",
        "/models/spam-20200101T000000Z-deadbeef/report/secret.txt",
        "/models/spam-20200101T000000Z-deadbeef/report/..%2Fmodel.joblib",
    ],
)
def test_unknown_or_hostile_paths_are_404(client: FlaskClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.get_json()["error"]["code"] == "not_found"


def test_a_report_is_served_with_its_plots(client: FlaskClient, model_dir: Path) -> None:
    version = str(Registry(model_dir).current())
    folder = Registry(model_dir).version_dir(version)
    (folder / "report.html").write_text("<h1>report</h1>")
    (folder / "report-pr.png").write_bytes(b"\x89PNG fake")
    r = client.get(f"/models/{version}/report")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "img-src 'self'" in r.headers["Content-Security-Policy"]
    r = client.get(f"/models/{version}/report/pr.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert client.get(f"/models/{version}/report/model.joblib").status_code == 404


def test_the_training_report_has_a_stylesheet_and_sharp_plots(tmp_path: Path) -> None:
    """What `train` writes, served: a styled page whose plots are drawn at 150 dpi."""
    import struct

    from training.report import write_report

    version = "spam-20261127T000000Z-0123abcd"
    folder = tmp_path / version
    folder.mkdir()
    metrics = {"n": 4, "accuracy": 0.75, "precision": 1.0, "recall": 0.5, "f1": 0.67}
    write_report(folder, version=version,
                 summary={"sources": {"<b>x</b>": 4}, "examples": 4, "folded_duplicates": 0,
                          "train": 2, "test": 4},
                 gate={"passed": True, "reasons": ["first model"],
                       "candidate": {"overall": metrics}},
                 y=[0, 0, 1, 1], candidate_probs=[0.1, 0.2, 0.3, 0.9], serving_probs=None,
                 thresholds={"unsure": 0.3, "spam": 0.5, "discard": 0.95})
    page = (folder / "report.html").read_text()
    assert "<style>" in page and "font:" in page and "figcaption" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    for name in ("pr", "confusion", "histogram"):
        png = (folder / f"report-{name}.png").read_bytes()
        width, height = struct.unpack(">II", png[16:24])
        assert width >= 680 and height >= 600, (name, width, height)
