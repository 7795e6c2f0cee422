"""The training report: report.html and three PNG plots next to the model.

Served by the web service at ``/models/<version>/report``. Everything that
came from stored data (site URLs, file names) is HTML-escaped; no comment
text is written into the report.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve

METRIC_COLUMNS = (
    "n", "accuracy", "precision", "recall", "f1", "mcc", "roc_auc", "precision_at_discard",
)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if np.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


def _table(title: str, rows: dict[str, dict[str, Any]]) -> str:
    head = "".join(f"<th>{c}</th>" for c in METRIC_COLUMNS)
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{_fmt(m.get(c, float('nan')))}</td>" for c in METRIC_COLUMNS)
        + "</tr>"
        for name, m in rows.items()
    )
    return f"<h2>{html.escape(title)}</h2><table><tr><th></th>{head}</tr>{body}</table>"


def _plots(
    out: Path, y: Sequence[int], candidate: Sequence[float], serving: Sequence[float] | None,
    thresholds: dict[str, float],
) -> None:
    y_true = np.asarray(y, dtype=int)
    p = np.asarray(candidate, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, probs in (("candidate", p), ("serving", serving)):
        if probs is not None and len(set(y_true)) > 1:
            prec, rec, _ = precision_recall_curve(y_true, np.asarray(probs, dtype=float))
            ax.plot(rec, prec, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall, held-out labels")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "report-pr.png", dpi=80)
    plt.close(fig)

    pred = (p >= thresholds["spam"]).astype(int)
    matrix = np.array([[np.sum((y_true == a) & (pred == b)) for b in (0, 1)] for a in (0, 1)])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xticks([0, 1], ["ham", "spam"])
    ax.set_yticks([0, 1], ["ham", "spam"])
    ax.set_xlabel(f"predicted (spam >= {thresholds['spam']})")
    ax.set_ylabel("label")
    ax.set_title("confusion matrix, candidate")
    fig.tight_layout()
    fig.savefig(out / "report-confusion.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    bins = [i / 40 for i in range(41)]
    ax.hist(p[y_true == 0], bins=bins, alpha=0.6, label="ham")
    ax.hist(p[y_true == 1], bins=bins, alpha=0.6, label="spam")
    for name, t in thresholds.items():
        ax.axvline(t, linestyle="--", linewidth=1, color="grey")
        ax.text(t, ax.get_ylim()[1] * 0.95, name, rotation=90, fontsize=7)
    ax.set_xlabel("spam probability (candidate)")
    ax.set_title("scores by class")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "report-histogram.png", dpi=80)
    plt.close(fig)


def write_report(
    out: Path,
    *,
    version: str,
    summary: dict[str, Any],
    gate: dict[str, Any],
    y: Sequence[int],
    candidate_probs: Sequence[float],
    serving_probs: Sequence[float] | None,
    thresholds: dict[str, float],
) -> Path:
    """Write report.html and its plots into ``out`` (the version's directory)."""
    _plots(out, y, candidate_probs, serving_probs, thresholds)
    sources = "".join(
        f"<li>{html.escape(str(k))}: {v}</li>" for k, v in sorted(summary["sources"].items())
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in gate["reasons"])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>model {html.escape(version)}</title><style>",
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>",
        f"<h1>Model {html.escape(version)}</h1>",
        f"<p>{summary['examples']} examples after folding {summary['folded_duplicates']} "
        f"duplicates; trained on {summary['train']}, held out {summary['test']}.</p>",
        f"<ul>{sources}</ul>",
        f"<p>Thresholds: {html.escape(str(thresholds))}</p>",
        f"<h2>Gate: {'passed' if gate['passed'] else 'FAILED'}</h2><ul>{reasons}</ul>",
        _table("Candidate", gate["candidate"]),
    ]
    if gate.get("serving"):
        parts.append(_table(f"Serving {gate.get('serving_version')}", gate["serving"]))
    parts += [
        "<h2>Plots</h2>",
        "<img src='report/pr.png' alt='precision-recall curve'>",
        "<img src='report/confusion.png' alt='confusion matrix'>",
        "<img src='report/histogram.png' alt='score histogram'>",
        "</body></html>",
    ]
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
