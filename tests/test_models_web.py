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
