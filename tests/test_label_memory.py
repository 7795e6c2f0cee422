"""The label memory's bound (service/scoring/label_memory.py): at most ``size``
entries, the oldest forgotten first, a relabelled comment counted as new.
How labels reach the memory across workers is tested in test_cache.py and
test_label_join.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.scoring.label_memory import EVICT_DIVISOR, LabelMemory
from service.store.db import Store, engine_for
from training.text import Comment

WORDS = ("budget", "council", "bridge", "school", "harbour", "library", "tram", "museum",
         "market", "stadium", "river", "tunnel", "airport", "garden", "station", "hospital")


def text(i: int) -> str:
    """Distinct model texts (numbers are folded, so the words must differ)."""
    return f"the {WORDS[i % 16]} and the {WORDS[i // 16 % 16]} plan needs a {WORDS[i // 256]} vote"


@pytest.fixture
def memory(tmp_path: Path) -> LabelMemory:
    return LabelMemory(Store(engine_for(f"sqlite:///{tmp_path / 'm.sqlite3'}")), size=40)


def test_a_full_memory_forgets_the_oldest_labels_first(memory: LabelMemory) -> None:
    for i in range(100):  # two entries a label: the text, and the text with its author
        memory.remember(1, text(i), f"author{i}", "spam", "moderator")
        assert len(memory) <= memory.size
    assert len(memory) >= memory.size - memory.size // EVICT_DIVISOR
    assert memory.match(1, Comment(content=text(99), author="author99")) is not None
    assert memory.match(1, Comment(content=text(0), author="author0")) is None


def test_a_relabelled_comment_is_the_newest(memory: LabelMemory) -> None:
    memory.remember(1, text(0), "first", "ham", "moderator")
    for i in range(1, 15):
        memory.remember(1, text(i), "someone", "ham", "moderator")
    memory.remember(1, text(0), "first", "spam", "moderator")  # corrected: now the newest
    for i in range(15, 28):
        memory.remember(1, text(i), "someone", "ham", "moderator")
    found = memory.match(1, Comment(content=text(0), author="first"))
    assert found is not None and found.label == "spam"
    assert memory.match(1, Comment(content=text(1), author="someone")) is None


def test_a_memory_of_one_keeps_the_newest(tmp_path: Path) -> None:
    memory = LabelMemory(Store(engine_for(f"sqlite:///{tmp_path / 'm.sqlite3'}")), size=1)
    memory.remember(1, text(0), "a", "spam", "site")
    memory.remember(1, text(1), "b", "spam", "site")
    assert len(memory) == 1
    assert memory.match(1, Comment(content=text(1), author="anyone")) is not None
