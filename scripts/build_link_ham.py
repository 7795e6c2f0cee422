"""Write training/data/discussion-ham/discussion_ham_links.csv: real discussion
comments that contain a link, as ham.

The first discussion-ham sample kept only comments without links, so the model
learnt "a link means spam" (weight +5 log-odds) and flagged honest readers who
cite a source. This adds every comment with a link from the same permissively
licensed files (Wikipedia Talk test set and Perspective's 2k Wikipedia sample,
Apache-2.0; Civil Comments in Toxic Spans, CC0). Rude or toxic comments stay in:
they are not spam. Reads ``<repo>/../shared/data/toxicity``; run from the
repository root:

    python scripts/build_link_ham.py
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO.parent / "shared" / "data" / "toxicity"
OUT = REPO / "training" / "data" / "discussion-ham" / "discussion_ham_links.csv"
LINK = re.compile(r"https?://|www\.")
FILES = (
    ("wiki_toxicity_nonfuzzed_testset.csv", "comment", "wikipedia-talk"),
    ("perspective_wikipedia_2k_score_sample_20180829.csv", "comment_text", "wikipedia-perspective"),
    ("toxic_spans_tsd_train.csv", "text", "civil-comments"),
)


def main() -> None:
    rows: dict[str, tuple[str, str]] = {}
    for name, column, group in FILES:
        with (SOURCE / name).open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                text = row[column].strip()
                if LINK.search(text) and 20 <= len(text) <= 2000:
                    rows.setdefault(" ".join(text.lower().split()), (text, group))
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["content", "label", "group"])
        for text, group in rows.values():
            writer.writerow([text, "ham", group])
    print(f"{len(rows)} comments with links -> {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
