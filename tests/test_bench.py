"""Smoke tests for the benchmark scripts: they run, print their table and find no errors.

Real servers, real wrk, one-second runs: correctness of the harness, not speed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import wrk
from bench.run import Row, server_p99_bound, table, verdicts

ROOT = Path(__file__).resolve().parent.parent

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:1/
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  300.00us   5.00ms   90.00%
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    1.50ms
     99%    2.10s
  1234 requests in 1.00s, 200.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   1234.50
Transfer/sec:    200.00KB
"""


def test_wrk_report_is_read_with_units_and_errors() -> None:
    r = wrk.parse(WRK_OUTPUT)
    assert (r.requests, r.rps) == (1234, 1234.5)
    assert r.p50_ms == pytest.approx(0.812) and r.p99_ms == pytest.approx(2100.0)
    assert (r.non_2xx, r.socket_errors, r.errors) == (4, 3, 7)


def test_missing_features_print_not_available() -> None:
    rows = [Row("ceiling", "c", 1000.0, 1.0, 2.0, 0, {"rss": 30.0}, 1.0),
            Row("hit", "h", note="n/a (not available: no verdict cache)")]
    out = table(rows)
    assert "n/a (not available: no verdict cache)" in out and "| ceiling | 1,000 |" in out
    assert any("errors over all scenarios: 0" in v for v in verdicts(rows))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_run_py_one_second_one_scenario(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--only", "miss", "--only", "floor-miss",
         "--only", "floor-hit", "--duration", "1", "--warmup", "1",
         "--workers", "2", "--model-dir", str(model_dir), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| ceiling |" in proc.stdout and "| miss |" in proc.stdout
    assert "| floor-miss |" in proc.stdout and "of that floor" in proc.stdout
    assert "| floor-hit |" in proc.stdout  # the ceiling recording each check
    assert "rerun: make bench" in proc.stdout
    assert "request errors over all scenarios: 0" in proc.stdout
    assert '"scenario": "miss"' in out.read_text()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_run_py_sends_real_news_comments_without_an_error(model_dir: Path) -> None:
    """--texts news: real comments, with quotes, backslashes and any character, reach
    the JSON and the Akismet endpoints as valid bodies (a 400 would count as an error)."""
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--texts", "news", "--only", "miss",
         "--only", "akismet", "--duration", "1", "--warmup", "1", "--workers", "2",
         "--model-dir", str(model_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "texts: news" in proc.stdout
    assert "| miss |" in proc.stdout and "| akismet |" in proc.stdout
    assert "request errors over all scenarios: 0" in proc.stdout, proc.stdout


def test_news_texts_are_one_comment_a_line() -> None:
    from bench.run import news_texts

    texts = news_texts(count=300)
    assert len(texts) == 300 and all(t and "\n" not in t and "\r" not in t for t in texts)
    assert any('"' in t for t in texts)  # the escaping is exercised


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_steady_py_holds_a_small_rate(model_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "bench/steady.py", "--rate", "5", "--duration", "2", "--workers", "1",
         "--model-dir", str(model_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "errors 0" in proc.stdout and "p99" in proc.stdout


def test_server_p99_bound_reads_the_histogram_difference() -> None:
    inf = float("inf")
    before = {0.001: 10.0, 0.005: 10.0, 0.01: 10.0, inf: 10.0}
    after = {0.001: 60.0, 0.005: 108.0, 0.01: 110.0, inf: 110.0}  # 100 new, 98 under 5 ms
    assert server_p99_bound(before, after) == 10.0
    after[0.005] = 109.0  # 99 of 100 under 5 ms
    assert server_p99_bound(before, after) == 5.0
    assert server_p99_bound(after, after) is None  # nothing measured in between


def test_scoring_instructions_child_runs_every_stage(model_dir: Path) -> None:
    """The part bench/scoring_instructions.py runs under valgrind, run natively: every
    stage it counts scores the bench's comments with the registry's current model."""
    from bench import scoring_instructions

    for stage in scoring_instructions.STAGES:
        proc = subprocess.run(
            [sys.executable, "bench/scoring_instructions.py", "--child", stage, "3",
             "--model-dir", str(model_dir)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )
        assert proc.returncode == 0, (stage, proc.stderr)


def test_scoring_instructions_says_when_no_model_is_there(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "bench/scoring_instructions.py", "--child", "char", "1",
         "--model-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode != 0 and "no current spam model" in proc.stderr
