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

DPI = 150  # sharp on high-density screens; shown at half size by the stylesheet
plt.rcParams.update({
    "font.size": 11, "axes.titlesize": 13, "axes.labelsize": 11, "axes.grid": True,
    "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
})
STYLE = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #f5f6f8; --card: #fff;
        --pass: #1f7a3f; --fail: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
header { background: #1d2330; color: #fff; padding: 14px 28px; }
header h1 { margin: 0; font-size: 19px; font-weight: 600; word-break: break-all; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 28px 40px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
          padding: 14px 20px; margin: 0 0 18px; }
h2 { font-size: 16px; margin: 0 0 10px; }
.passed { color: var(--pass); } .failed { color: var(--fail); }
ul { margin: 0; padding-left: 20px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 14px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
td:first-child, th:first-child { text-align: left; }
tr:last-child td { border-bottom: 0; }
.plots { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 0; flex: 1 1 460px; }
figure img { width: 100%; max-width: 560px; height: auto; border: 1px solid var(--line);
             border-radius: 6px; background: #fff; }
figcaption { color: var(--muted); font-size: 13px; }
"""
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
    return (
        f"<section><h2>{html.escape(title)}</h2><div class='scroll'><table>"
        f"<tr><th></th>{head}</tr>{body}</table></div></section>"
    )


def _plots(
    out: Path, y: Sequence[int], candidate: Sequence[float], serving: Sequence[float] | None,
    thresholds: dict[str, float],
) -> None:
    y_true = np.asarray(y, dtype=int)
    p = np.asarray(candidate, dtype=float)
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    drawn = 0
    for name, probs in (("candidate", p), ("serving", serving)):
        if probs is not None and len(set(y_true)) > 1:
            prec, rec, _ = precision_recall_curve(y_true, np.asarray(probs, dtype=float))
            ax.plot(rec, prec, label=name, linewidth=2)
            drawn += 1
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall, held-out labels")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    if drawn:
        ax.legend(loc="lower left")
    else:  # (matplotlib warned on the operator's terminal of a legend with nothing in it)
        ax.text(0.5, 0.5, "one class held out:\nno precision-recall curve", ha="center",
                va="center", transform=ax.transAxes, color="#444")
    fig.tight_layout()
    fig.savefig(out / "report-pr.png", dpi=DPI)
    plt.close(fig)

    pred = (p >= thresholds["spam"]).astype(int)
    matrix = np.array([[np.sum((y_true == a) & (pred == b)) for b in (0, 1)] for a in (0, 1)])
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.imshow(matrix, cmap="Blues")
    ax.grid(False)
    dark = matrix.max() / 2 if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=16,
                color="white" if v > dark else "#1d2330")
    ax.set_xticks([0, 1], ["ham", "spam"])
    ax.set_yticks([0, 1], ["ham", "spam"])
    ax.set_xlabel(f"predicted (spam >= {thresholds['spam']})")
    ax.set_ylabel("label")
    ax.set_title("confusion matrix, candidate")
    fig.tight_layout()
    fig.savefig(out / "report-confusion.png", dpi=DPI)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    bins = [i / 40 for i in range(41)]
    ax.hist(p[y_true == 0], bins=bins, alpha=0.6, label="ham", color="#2b7bb9")
    ax.hist(p[y_true == 1], bins=bins, alpha=0.6, label="spam", color="#d9482b")
    ax.set_yscale("log")  # most comments sit at either end: a linear axis hides the middle
    for name, t in thresholds.items():
        ax.axvline(t, linestyle="--", linewidth=1.2, color="#444")
        ax.text(t, ax.get_ylim()[1] * 0.7, f" {name}", rotation=90, fontsize=10,
                va="top", ha="right", color="#444")
    ax.set_xlabel("spam probability (candidate)")
    ax.set_ylabel("comments (log scale)")
    ax.set_title("scores by class, with the thresholds")
    ax.legend(loc="center", bbox_to_anchor=(0.55, 0.5))
    fig.tight_layout()
    fig.savefig(out / "report-histogram.png", dpi=DPI)
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
    verdict = "passed" if gate["passed"] else "FAILED"
    shown = ", ".join(f"{html.escape(k)} {float(v):.3f}" for k, v in thresholds.items())
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>model {html.escape(version)}</title><style>{STYLE}</style></head><body>",
        f"<header><h1>Model {html.escape(version)}</h1></header><main>",
        "<section><h2>Data</h2>",
        f"<p>{summary['examples']} examples after folding {summary['folded_duplicates']} "
        f"duplicates; trained on {summary['train']}, held out {summary['test']}.</p>",
        f"<ul>{sources}</ul><p>Thresholds: {shown}</p></section>",
        f"<section><h2>Gate: <span class='{verdict.lower()}'>{verdict}</span></h2>"
        f"<ul>{reasons}</ul></section>",
        _table("Candidate", gate["candidate"]),
    ]
    if gate.get("serving"):
        parts.append(_table(f"Serving {gate.get('serving_version')}", gate["serving"]))
    parts += [
        "<section><h2>Plots</h2><div class='plots'>",
        "<figure><img src='report/pr.png' alt='precision-recall curve'>"
        "<figcaption>Precision against recall on the held-out labels.</figcaption></figure>",
        "<figure><img src='report/confusion.png' alt='confusion matrix'>"
        "<figcaption>Held-out labels against the candidate's verdict at the spam "
        "threshold.</figcaption></figure>",
        "<figure><img src='report/histogram.png' alt='score histogram'>"
        "<figcaption>Spam probabilities of held-out ham and spam (log scale), with the "
        "unsure, spam and discard thresholds.</figcaption></figure>",
        "</div></section></main></body></html>",
    ]
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
