"""The ceiling: a bare Flask endpoint that parses a small JSON body and returns JSON.

Served by bench/run.py under the same gunicorn settings as commentmod
(bench/ceiling_conf.py), it is the most any Flask endpoint can do on this
machine; commentmod's scenarios are quoted as a ratio to it. Beside it, the
floors: the same endpoint plus what a check cannot do without (one Redis round
trip; for a miss, the model's scoring too; for a hit, recording the check), so a
ratio out of reach by design is shown with the floor it hits.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import redis
from flask import Flask, jsonify, request

from bench.servers import REDIS_URL
from training.text import COMMENT_FIELDS, Comment

app = Flask(__name__)
# The floor under any check that counts floods across workers: the same endpoint
# plus one Redis round trip (INCR, EXPIRE, GET pipelined), as commentmod's lookup.
_redis = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL") or REDIS_URL,
                              socket_timeout=0.5)


def _round_trip() -> None:
    pipe = _redis.pipeline(transaction=False)
    pipe.incr("commentmod-bench:ceiling")
    pipe.expire("commentmod-bench:ceiling", 60)
    pipe.get("commentmod-bench:ceiling-previous")
    pipe.execute()


@app.post("/")
def echo() -> Any:
    body = request.get_json(force=True)
    return jsonify(ok=True, chars=len(body.get("content", "")))


@app.post("/redis")
def echo_redis() -> Any:
    body = request.get_json(force=True)
    _round_trip()
    return jsonify(ok=True, chars=len(body.get("content", "")))


# The floor under a cache miss by design: the ceiling's Redis round trip plus the
# serving model's own scoring with its reasons (service.scoring.model.Scorer, the
# compiled tables commentmod serves), and nothing else of commentmod's: no rules,
# no verdict cache, no check record, no metrics. BENCH_MODEL_DIR names the
# registry; the model is loaded at import (in the master: gunicorn preloads). The
# floor runs as a server of its own (bench/run.py), so the ceiling's worker holds
# no model.
def _load_scorer() -> Any:
    root = os.environ.get("BENCH_MODEL_DIR")
    if not root:
        return None
    from service.registry.versions import Registry
    from service.scoring.model import load_scorer

    registry = Registry(Path(root))
    version = registry.current()
    return load_scorer(registry, version) if version else None


_scorer = _load_scorer()
if _scorer is not None:
    import gc

    gc.freeze()  # as commentmod's master does: no full collection walks the model's tables
_FIELDS = frozenset(COMMENT_FIELDS)


def _scored(fields: dict[str, str]) -> tuple[float, list[dict[str, Any]]]:
    comment = Comment(**{k: v for k, v in fields.items() if k in _FIELDS})
    [(p, reasons)] = _scorer.score([comment])
    return p, [r.to_dict() for r in reasons]


@app.post("/score")
def score() -> Any:
    body = request.get_json(force=True)
    _round_trip()
    p, reasons = _scored(body)
    return jsonify(spam_probability=p, reasons=reasons)


@app.post("/score-form")
def score_form() -> Any:
    """The same floor for Akismet's comment-check: a form in, "true"/"false" out."""
    form = dict(parse_qsl(request.get_data(as_text=True)))
    fields = {name: form.get(key, "") for name, key in (
        ("content", "comment_content"), ("author", "comment_author"),
        ("author_email", "comment_author_email"), ("author_url", "comment_author_url"),
        ("user_ip", "user_ip"), ("user_agent", "user_agent"), ("referrer", "referrer"),
        ("permalink", "permalink"), ("type", "comment_type"), ("lang", "blog_lang"))}
    _round_trip()
    p, _ = _scored(fields)
    return app.response_class("true" if p >= 0.5 else "false", mimetype="text/plain")


# The floor under a cache hit by design: the ceiling plus recording the answered
# check as commentmod records every one (service.store.writebehind: a journal line
# before the answer, the row committed by the worker's writer thread, on the
# database BENCH_RECORD_URL, journal under BENCH_RECORD_DIR), and nothing else: no
# verdict, no flood count, no metrics. A hit cannot do less, since a site may send
# a label by the guid of any check (bench/run.py's floor-hit).
_RECORD_URL = os.environ.get("BENCH_RECORD_URL") or ""
_RECORD_SECRET = secrets.token_hex(16)  # the guids are tagged, as commentmod's are
if _RECORD_URL:  # the schema once, in the master; each worker opens its own engine
    from service.store.db import (
        COMMENT_COLUMNS,
        CheckRecord,
        Store,
        engine_for,
        now,
        signed_guid,
    )
    from service.store.migrate import upgrade
    from service.store.writebehind import WriteBehind

    _engine = engine_for(_RECORD_URL)
    upgrade(_engine)
    _engine.dispose()
_recorder: Any = None


def _record(fields: dict[str, Any]) -> str:
    global _recorder
    if _recorder is None:  # in the worker: a writer thread and a journal of its own
        _recorder = WriteBehind(Store(engine_for(_RECORD_URL)),
                                journal_root=Path(os.environ["BENCH_RECORD_DIR"]))
    guid = signed_guid(_RECORD_SECRET)
    _recorder.submit([CheckRecord(
        guid=guid, site_id=None, source="bench-floor", content=str(fields.get("content", "")),
        fields={k: str(v) for k, v in fields.items() if k in COMMENT_COLUMNS},
        extra={}, spam_probability=None, verdict=None, discard=False, reasons=[],
        model_version="", received_at=now(),
    )])
    return guid


@app.post("/record")
def record() -> Any:
    body = request.get_json(force=True)
    return jsonify(ok=True, guid=_record(body))


@app.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")
