"""The ceiling: a bare Flask endpoint that parses a small JSON body and returns JSON.

Served by bench/run.py under the same gunicorn settings as commentmod
(bench/ceiling_conf.py), it is the most any Flask endpoint can do on this
machine; commentmod's scenarios are quoted as a ratio to it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/")
def echo() -> Any:
    body = request.get_json(force=True)
    return jsonify(ok=True, chars=len(body.get("content", "")))


@app.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")
