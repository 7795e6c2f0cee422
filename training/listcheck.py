"""How often each list and lure signal fires on ham and on spam, corpus by corpus.

A list may move a verdict only through a weight the model learns; this is the
check that it does not fire on ordinary comments. Usage, from the repository:

    python -m training.listcheck [--eval-only]

Shipped corpora (discussion ham, YouTube, SMS) always; ``--eval-only`` adds the
measurement-only corpora from ``<repo>/../shared/data/eval-only`` (read, never
copied).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from training.datasets import Example, eval_only_corpora, shipped_corpora
from training.spamlists import (
    EXCLUSIONS,
    LIST_SIGNAL_NAMES,
    matched_phrases,
    raw_phrase_table,
    tokens,
)
from training.text import SIGNAL_INDEX, normalise_text, signal_vector


def ham_hits(examples: Sequence[Example]) -> dict[str, int]:
    """Entries of the phrase lists that occur in ham, with how many ham comments each hit."""
    tables = [raw_phrase_table("wp"), raw_phrase_table("smoke")]
    counts: dict[str, int] = {}
    for e in examples:
        if e.label:
            continue
        words = tokens(normalise_text(e.comment.content))
        for entry in set().union(*(matched_phrases(words, t) for t in tables)):
            counts[entry] = counts.get(entry, 0) + 1
    return counts


def write_exclusions() -> int:
    hits = ham_hits([e for _, ex in shipped_corpora() for e in ex])
    header = ("# Phrase-list entries that occurred in the shipped ham (discussion comments,\n"
              "# YouTube and SMS ham): measured false positives, not matched by the signals.\n"
              "# Written by: python -m training.listcheck --write-exclusions\n")
    EXCLUSIONS.write_text(header + "".join(f"{k}\n" for k in sorted(hits)), encoding="utf-8")
    return len(hits)


def fire_rates(examples: Sequence[Example]) -> dict[str, tuple[float, float, int, int]]:
    """signal -> (share of ham it fires on, share of spam, n ham, n spam)."""
    vectors = [(signal_vector(e.comment), e.label) for e in examples]
    n_ham = sum(1 for _, y in vectors if y == 0)
    n_spam = len(vectors) - n_ham
    out = {}
    for name in LIST_SIGNAL_NAMES:
        i = SIGNAL_INDEX[name]
        ham = sum(1 for v, y in vectors if y == 0 and v[i] > 0)
        spam = sum(1 for v, y in vectors if y == 1 and v[i] > 0)
        out[name] = (ham / max(n_ham, 1), spam / max(n_spam, 1), n_ham, n_spam)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-only", action="store_true",
                        help="also the measurement-only corpora in ../shared/data/eval-only")
    parser.add_argument("--write-exclusions", action="store_true",
                        help=f"rewrite {EXCLUSIONS.name} from the shipped ham first")
    args = parser.parse_args(argv)
    if args.write_exclusions:
        print(f"{write_exclusions()} list entries fired on shipped ham: excluded")
    corpora = dict(shipped_corpora())
    if args.eval_only:
        corpora.update(eval_only_corpora())
    names = list(corpora)
    print(f"{'signal: % ham / % spam it fires on':36}" + "".join(f"{n[:16]:>18}" for n in names))
    rates = {n: fire_rates(ex) for n, ex in corpora.items()}
    for signal in LIST_SIGNAL_NAMES:
        cells = []
        for n in names:
            ham, spam, _, n_spam = rates[n][signal]
            cells.append(f"{ham:>7.1%} /{spam:>7.1%}" if n_spam else f"{ham:>7.1%} /     - ")
        print(f"{signal:36}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
