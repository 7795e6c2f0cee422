"""The ceiling: a bare Flask endpoint that parses a small JSON body and returns JSON.

Served by bench/run.py under the same gunicorn settings as commentmod
(bench/ceiling_conf.py), it is the most any Flask endpoint can do on this
machine; commentmod's scenarios are quoted as a ratio to it.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from flask import Flask, jsonify, request

app = Flask(__name__)
# The floor under any check that counts floods across workers: the same endpoint
# plus one Redis round trip (INCR, EXPIRE, GET pipelined), as commentmod's lookup.
_redis = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/13",
                              socket_timeout=0.5)


@app.post("/")
def echo() -> Any:
    body = request.get_json(force=True)
    return jsonify(ok=True, chars=len(body.get("content", "")))


@app.post("/redis")
def echo_redis() -> Any:
    body = request.get_json(force=True)
    pipe = _redis.pipeline(transaction=False)
    pipe.incr("commentmod-bench:ceiling")
    pipe.expire("commentmod-bench:ceiling", 60)
    pipe.get("commentmod-bench:ceiling-previous")
    pipe.execute()
    return jsonify(ok=True, chars=len(body.get("content", "")))


@app.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")
