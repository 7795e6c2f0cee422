"""Instructions per call of each scoring stage, counted by valgrind: repeatable on
a loaded machine, where timings of a few hundred microseconds are not.

    python bench/scoring_instructions.py                       # this checkout
    python bench/scoring_instructions.py --root before=../old --root after=.
    python bench/scoring_instructions.py --stage char --stage score

Each stage runs over 200 and then 600 new bench-like comments (the texts of
bench/lua/common.lua with a unique tail, as the ``miss`` scenario sends them),
in a process started under ``valgrind --tool=callgrind``; the difference of the
two totals over 400 is one call, free of start-up and model loading. The model
is the current spam version of ``--model-dir`` (bootstrapped by ``make serve``
or bench/run.py), the same for every root. Needs valgrind (Debian: ``apt-get
install valgrind``); about a minute per stage and root.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA_COMMON = ROOT / "bench" / "lua" / "common.lua"


def bench_texts(lua: Path = LUA_COMMON) -> list[str]:
    """The comment texts the wrk scenarios send (``texts = {...}`` in common.lua)."""
    block = re.search(r"texts = \{(.*?)\n\}", lua.read_text(), re.S)
    if block is None:
        raise RuntimeError(f"no texts table in {lua}")
    return re.findall(r'"((?:[^"\\]|\\.)*)"', block.group(1))


STAGES = ("model_text", "word", "char", "signals", "explain", "score", "score_no_reasons",
          "miss_text")
WARM = 200  # calls before the counted ones: the word memo is warm, as in a served worker


def _child(stage: str, n: int, model_dir: str) -> None:
    """Run ``stage`` over ``n`` comments after the warm-up; the parent counts."""
    # The measured checkout first (the parent runs us in it): bench/, this script's
    # directory, holds a training.py that would shadow the training package.
    sys.path.insert(0, str(Path.cwd()))
    from service.cache.flood import flood_keys
    from service.registry.versions import Registry
    from service.scoring.model import load_scorer
    from training.text import Comment, model_text, signal_vector

    registry = Registry(Path(model_dir))
    version = registry.current("spam")
    if version is None:
        sys.exit(f"no current spam model in {model_dir}: run `make serve` or bench/run.py first")
    scorer = load_scorer(registry, version)
    lean = scorer.lean
    assert lean is not None and lean.char is not None
    texts = bench_texts()
    comments = [Comment(content=f"{texts[i % len(texts)]} (tok{i % 97}x {i % 2} {i})",
                        author="reader", author_email="reader@example.com")
                for i in range(WARM + 600)]
    model_texts = [model_text(c.content) for c in comments]
    char = lean.char
    calls: dict[str, Any] = {
        "model_text": lambda i: model_text(comments[i].content),
        "word": lambda i: lean.word.margin(model_texts[i], None),
        "char": lambda i: char.hits(model_texts[i]),
        "signals": lambda i: signal_vector(comments[i]),
        "explain": lambda i: lean.explain(comments[i]),
        "score": lambda i: scorer.score([comments[i]]),
        "score_no_reasons": lambda i: scorer.score([comments[i]], explain=0),
        # what a cache miss works out from the text: its flood keys, then the score
        "miss_text": lambda i: (flood_keys(comments[i]), scorer.score([comments[i]])),
    }
    call = calls[stage]
    for i in range(WARM):
        call(i)
    for i in range(WARM, WARM + n):
        call(i)


def _instructions(root: Path, stage: str, n: int, model_dir: str) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(root)}
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         str(Path(__file__).resolve()), "--child", stage, str(n), "--model-dir", model_dir],
        env=env, cwd=root, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no total:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", action="append", default=[],
                   help="NAME=PATH of a checkout to measure (default: this one)")
    p.add_argument("--stage", action="append", choices=STAGES, default=[])
    p.add_argument("--model-dir", default=str(ROOT / "models"))
    p.add_argument("--child", nargs=2, metavar=("STAGE", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]), args.model_dir)
        return 0
    if shutil.which("valgrind") is None:
        sys.exit("valgrind not found: apt-get install valgrind")
    roots = [tuple(r.split("=", 1)) for r in args.root] or [("this", str(ROOT))]
    stages = args.stage or ["char", "signals", "explain", "score"]
    model_dir = str(Path(args.model_dir).resolve())
    print(f"model dir {model_dir}; instructions per call (valgrind), "
          f"({WARM + 600}-call run - {WARM + 200}-call run) / 400")
    print("| stage | " + " | ".join(name for name, _ in roots) + " |")
    print("|---|" + "---:|" * len(roots))
    for stage in stages:
        counts = []
        for _, path in roots:
            root = Path(path).resolve()
            few, many = (_instructions(root, stage, n, model_dir) for n in (200, 600))
            counts.append((many - few) // 400)
        print(f"| {stage} | " + " | ".join(f"{c:,}" for c in counts) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
