"""schemathesis against a live gunicorn server: every documented operation is fuzzed;
no 5xx, and every answer matches the OpenAPI document (status, content type, schema).

The number of cases tried is printed (run with ``-s``) and written to
``$COMMENTMOD_FUZZ_REPORT`` when that variable names a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from service.moderation import moderators
from service.store import migrate
from service.store.db import Store, engine_for

CHECKS = (
    "not_a_server_error,response_schema_conformance,"
    "status_code_conformance,content_type_conformance"
)
MAX_EXAMPLES = int(os.environ.get("COMMENTMOD_FUZZ_EXAMPLES", "15"))


def count_cases(ndjson: Path) -> int:
    """Test cases schemathesis ran, from its NDJSON event stream."""
    cases = 0
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        for kind, payload in event.items():
            if kind == "ScenarioFinished":
                cases += len(payload.get("recorder", {}).get("cases", {}))
    return cases


@pytest.mark.slow
def test_fuzz_live_server(serve: Callable[..., str], tmp_path: Path, sqlite_url: str) -> None:
    # A real site key and an admin moderator, so endpoints behind Bearer and
    # moderator Basic auth are fuzzed past the 401: schemathesis sends each
    # operation the credentials of the security scheme the document names for it.
    store = Store(engine_for(sqlite_url))
    migrate.upgrade(store.engine)
    key, _ = store.create_key("https://fuzz.example")
    password = "fuzz-moderator-password"
    moderators.create(store, "fuzz", password, admin=True, hasher=moderators.FAST)
    store.engine.dispose()
    base = serve(workers=2, env={"COMMENTMOD_PASSWORD_HASH_COST": "fast"})
    # One checked comment, so the moderation queue and stats answer with rows to validate.
    seed = urllib.request.Request(
        f"{base}/api/v1/check", data=json.dumps({"content": "fuzz seed comment"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(seed, timeout=10) as r:
        assert r.status == 200
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[auth.openapi.bearer]\nbearer = "{key}"\n\n'
        f'[auth.openapi.moderatorBasic]\nusername = "fuzz"\npassword = "{password}"\n'
    )
    ndjson = tmp_path / "fuzz.ndjson"
    st = Path(sys.executable).with_name("st")
    proc = subprocess.run(
        [
            str(st), "--config-file", str(config), "run", f"{base}/api/v1/openapi.json",
            "--url", base,
            "--checks", CHECKS,
            "--max-examples", str(MAX_EXAMPLES),
            "--seed", os.environ.get("COMMENTMOD_FUZZ_SEED", "20261126"),
            "--phases", "examples,coverage,fuzzing",
            # One schemathesis worker: with threads, hypothesis' lambda repr hits a
            # CPython 3.11 AST recursion bug (SystemError) in the coverage phase.
            "--workers", "1",
            "--request-timeout", "10",
            "--suppress-health-check", "all",
            "--report", "ndjson", "--report-ndjson-path", str(ndjson),
        ],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    cases = count_cases(ndjson)
    summary = f"schemathesis: {cases} cases against {base}, exit {proc.returncode}"
    print(summary)
    if report := os.environ.get("COMMENTMOD_FUZZ_REPORT"):
        Path(report).write_text(summary + "\n" + proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert cases >= 100, summary
