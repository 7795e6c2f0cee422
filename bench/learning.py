"""A new site teaches commentmod: labels lost, gate decisions and quality per stage.

Replays a corpus the bootstrap model was never trained on (default: the
Chinese SMS corpus; any folder of ``<repo>/../shared/data/eval-only`` by name,
or ``datacamp`` for its blog comments; read for measuring only, never copied)
as a new site of a real
``commentmod serve`` (4 gunicorn workers, write-behind on, SQLite): each
comment is checked, then labelled by its guid alone at once (the README's
feedback call). After 100, 300, 1,000 and all labels the product learns
(``commentmod train --promote``, or ``--learn refresh`` for ``commentmod
refresh``), and the site's held-out comments (never labelled) are checked
through the API. Per stage it prints labels lost, promoted or refused (and
why), MCC, F1 and discard precision, the share of labelled comments that
answer with their label when checked again, and the same MCC/F1 for TF-IDF +
logistic regression and bogofilter trained on the same labels only.

    .venv/bin/python bench/learning.py [--corpus NAME|datacamp|FILE] [--stages 100,300,1000,all]

The SMS Spam Collection is no longer offered: the bootstrap model has been
trained on it since the list and lure signals (issue 18), so it is no new site.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The repository first: bench/ holds a training.py that would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import http.client
import json
import random
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from bench.servers import ROOT, commentmod_env, create_akismet_key, python, start_commentmod
from training.baselines import BaselineError, bogofilter_fit_predict, tfidf_lr_fit_predict
from training.datasets import EVAL_ONLY, Example, deduplicate, read_dataset
from training.evaluate import metrics

ALIASES = {"datacamp": "datacamp_blog_comments"}
IN_THE_BOOTSTRAP = {"sms", "sms-spam-collection", "youtube"}
SITE = "https://newsite.example"
RECHECK = 200  # labelled comments checked again per stage


class Client:
    """Two keep-alive connections used in turn, so a label often reaches another
    worker than the one that answered its check (gunicorn's sync workers close
    each connection; the next request may land anywhere)."""

    def __init__(self, base: str, key: str) -> None:
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        self.turn = 0

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        self.turn += 1
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request("POST", path, body=json.dumps(body), headers=self.headers)
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode("utf-8", "replace")

    def check_many(self, examples: Sequence[Example]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(examples), 100):
            batch = [{"content": e.comment.content} for e in examples[i : i + 100]]
            status, body = self.post("/api/v1/check/batch", {"comments": batch})
            if status != 200:
                raise RuntimeError(f"batch check answered {status}: {body}")
            out.extend(body["results"])
        return out


def load(corpus: str, held_out: int, seed: int) -> tuple[list[Example], list[Example]]:
    if corpus in IN_THE_BOOTSTRAP:
        raise SystemExit(f"error: the bootstrap model is trained on {corpus!r}: it is no "
                         "new site; name a corpus of ../shared/data/eval-only")
    name = ALIASES.get(corpus, corpus)
    path = EVAL_ONLY / name / f"{name}.csv"
    if not path.is_file():
        path = Path(corpus)
    if not path.is_file():
        raise SystemExit(f"error: no corpus at {path} (the shared data sits beside the repo)")
    unique, _ = deduplicate(read_dataset(path))
    random.Random(seed).shuffle(unique)
    return unique[held_out:], unique[:held_out]


def scores(y: Sequence[int], answers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    pred = [int(a["verdict"] == "spam") for a in answers]
    m = metrics(y, [float(a["spam_probability"]) for a in answers], predicted=pred)
    discards = [yy for yy, a in zip(y, answers, strict=True) if a["discard"]]
    m["discards"] = len(discards)
    m["discard_precision"] = sum(discards) / len(discards) if discards else float("nan")
    m["unsure"] = sum(a["verdict"] == "unsure" for a in answers)
    return m


def baselines(train: Sequence[Example], test: Sequence[Example]) -> dict[str, Any]:
    y = [e.label for e in test]
    out: dict[str, Any] = {}
    if len({e.label for e in train}) < 2:
        return {"tfidf-lr": None, "bogofilter": None}
    out["tfidf-lr"] = metrics(y, tfidf_lr_fit_predict(train, test))
    try:
        probs, verdicts = bogofilter_fit_predict(train, test)
        out["bogofilter"] = metrics(y, probs, predicted=verdicts)
    except BaselineError as exc:
        print(f"bogofilter skipped: {exc}", file=sys.stderr)
        out["bogofilter"] = None
    return out


def learn(env: dict[str, str], how: str) -> dict[str, Any]:
    argv = [python(), "-m", "service.cli"]
    argv += ["train", "--promote", "--json", "--quiet"] if how == "train" else [
        "refresh", "--json"]
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          check=False)
    seconds = time.perf_counter() - started
    try:
        out: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return {"promoted": False, "why": f"exit {done.returncode}: {done.stderr[-300:]}",
                "seconds": seconds}
    gate = out.get("gate") or {}
    return {"promoted": bool(out.get("promoted")), "version": out.get("version"),
            "why": gate.get("verdict") or "; ".join(gate.get("reasons") or []),
            "seconds": seconds}


def wait_serving(client: Client, version: str | None, timeout: float = 60) -> None:
    if not version:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answers = [client.post("/api/v1/check", {"content": f"probe {random.random()}"})[1]
                   for _ in range(8)]
        if all(a.get("model_version") == version for a in answers):
            return
        time.sleep(0.5)
    print(f"warning: not every worker serves {version} after {timeout} s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="chinese_sms_spam_10k",
                        help="a folder of ../shared/data/eval-only, datacamp, or a file path")
    parser.add_argument("--stages", default="100,300,1000,all")
    parser.add_argument("--held-out", type=int, default=1500, help="comments never labelled")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--learn", choices=["train", "refresh"], default="train")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    stream, held = load(args.corpus, args.held_out, args.seed)
    stages = [len(stream) if s == "all" else min(int(s), len(stream))
              for s in args.stages.split(",")]
    y_held = [e.label for e in held]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="commentmod-learning-") as tmp:
        workdir = Path(tmp)
        env = commentmod_env(workdir, workdir / "models")
        env["COMMENTMOD_LOG_LEVEL"] = "WARNING"
        subprocess.run([python(), "-m", "service.cli", "db", "upgrade"], env=env, cwd=ROOT,
                       check=True, capture_output=True, timeout=300)
        key = create_akismet_key(env, SITE)
        if not key:
            raise SystemExit("error: could not create a site key")
        server = start_commentmod("commentmod", workdir, env, args.workers)
        server.wait_ready(timeout=900)
        try:
            client = Client(server.base, key)
            row: dict[str, Any] = {"labels": 0, "lost": 0, "gate": "bootstrap"}
            row["commentmod"] = scores(y_held, client.check_many(held))
            rows.append(row)
            sent = 0
            for stage in stages:
                lost, labelled = 0, stream[sent:stage]
                for e in labelled:
                    status, answer = client.post("/api/v1/check", {"content": e.comment.content})
                    if status != 200:
                        lost += 1
                        continue
                    status, _ = client.post("/api/v1/feedback", {
                        "guid": answer["guid"], "label": "spam" if e.label else "ham"})
                    lost += status != 200
                sent = stage
                time.sleep(1.5)  # write-behind interval and label memory refresh
                outcome = learn(env, args.learn)
                if outcome["promoted"]:
                    wait_serving(client, outcome.get("version"))
                sample = random.Random(stage).sample(stream[:sent], min(RECHECK, sent))
                again = client.check_many(sample)
                sticks = sum(a["verdict"] == ("spam" if e.label else "ham")
                             and "marked" in (a["reasons"] or [{}])[0].get("description", "")
                             for e, a in zip(sample, again, strict=True))
                row = {"labels": sent, "lost": lost, "gate": outcome,
                       "commentmod": scores(y_held, client.check_many(held)),
                       "sticks": sticks / len(sample) if sample else float("nan"),
                       **baselines(stream[:sent], held)}
                rows.append(row)
                report(row)
        finally:
            server.stop()
        lost_total = _count_lost(env, sent)
    if args.json:
        print(json.dumps({"corpus": args.corpus, "held_out": len(held), "rows": rows,
                          "labels_missing_in_db": lost_total}, indent=2, default=str))
        return
    print()
    print(table(rows, len(held), args.corpus))
    print(f"labels missing in the database after the run: {lost_total}")


def _count_lost(env: dict[str, str], sent: int) -> int:
    code = (
        "from service.config import load_settings\n"
        "from service.store.db import Store, engine_for\n"
        "from service.store import schema as t\n"
        "from sqlalchemy import select, func\n"
        "s = Store(engine_for(load_settings().resolved_database_url)); s.join_pending()\n"
        "print(s.read(lambda c: c.execute(select(func.count(func.distinct("
        "t.labels.c.comment_id)))).scalar()))\n"
    )
    done = subprocess.run([python(), "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    try:
        return sent - int(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return -1


def _f(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return f"{x:.1%}" if pct else f"{x:.3f}"


def report(row: dict[str, Any]) -> None:
    m, g = row["commentmod"], row["gate"]
    print(f"{row['labels']:>5} labels: lost {row['lost']}, "
          f"{'promoted' if g['promoted'] else 'refused'} ({g['why']}; {g['seconds']:.0f} s), "
          f"MCC {_f(m['mcc'])}, F1 {_f(m['f1'])}, discard precision "
          f"{_f(m['discard_precision'], True)} of {m['discards']}, sticks "
          f"{_f(row['sticks'], True)}", file=sys.stderr, flush=True)


def table(rows: list[dict[str, Any]], held: int, corpus: str) -> str:
    head = (f"new site: {corpus}, {held} held-out comments\n"
            "| labels | lost | model | MCC | F1 | discard precision (n) | unsure | "
            "label sticks | TF-IDF+LR MCC / F1 | bogofilter MCC / F1 |\n"
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    out = [head]
    for r in rows:
        m, g = r["commentmod"], r["gate"]
        model = g if isinstance(g, str) else ("promoted" if g["promoted"] else "refused")
        base = [r.get("tfidf-lr"), r.get("bogofilter")]
        cells = [f"{_f(b['mcc'])} / {_f(b['f1'])}" if b else "-" for b in base]
        out.append(
            f"| {r['labels']} | {r['lost']} | {model} | {_f(m['mcc'])} | {_f(m['f1'])} | "
            f"{_f(m['discard_precision'], True)} ({m['discards']}) | {m['unsure']} | "
            f"{_f(r.get('sticks'), True)} | {cells[0]} | {cells[1]} |"
        )
    out.append("")
    for r in rows[1:]:
        out.append(f"after {r['labels']} labels: {r['gate']['why']}")
    return "\n".join(out)


if __name__ == "__main__":
    main()
