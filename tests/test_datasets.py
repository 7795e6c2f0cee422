"""Readers, de-duplication and leak-free splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.datasets import (
    DatasetError,
    Example,
    deduplicate,
    group_folds,
    holdout_split,
    news_comments,
    read_dataset,
    shipped_base,
    shipped_youtube,
)
from training.features import Comment


def ex(text: str, label: int, group: str = "") -> Example:
    return Example(Comment(content=text), label, "t", group)


def test_shipped_youtube_reads_text_and_label_only() -> None:
    examples = shipped_youtube()
    assert len(examples) == 1956
    assert sum(e.label for e in examples) == 1005
    assert {e.group for e in examples} == {"Youtube01-Psy", "Youtube02-KatyPerry",
                                           "Youtube03-LMFAO", "Youtube04-Eminem",
                                           "Youtube05-Shakira"}
    # The leaking columns (author, date, id) never reach the comment record.
    assert all(e.comment.author == "" and e.comment.created_at == "" for e in examples)


def test_sms_collection_format(tmp_path: Path) -> None:
    """The SMS Spam Collection's ``label<TAB>text`` lines (the corpus itself is not
    shipped: its terms ask for a citation only, but nothing here needs it)."""
    sms = tmp_path / "SMSSpamCollection"
    sms.write_text("ham\tGo until jurong point, crazy..\n"
                   "spam\tFree entry in 2 a wkly comp to win FA Cup final tkts\tstill text\n"
                   "ham\tOk lar... Joking wif u oni...\n", encoding="utf-8")
    examples = read_dataset(sms)
    assert [e.label for e in examples] == [0, 1, 0]
    assert examples[1].comment.content.endswith("tkts\tstill text")
    assert {e.group for e in examples} == {"sms"}


def test_generic_csv_and_jsonl(tmp_path: Path) -> None:
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("content,label,author_url\nbuy now,spam,http://x\nnice piece,ham,\n")
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text(json.dumps({"content": "win cash", "label": 1}) + "\n\n"
                     + json.dumps({"content": "agreed", "label": "ham", "extra": 1}) + "\n")
    rows = read_dataset(csv_file)
    assert [(e.comment.content, e.label) for e in rows] == [("buy now", 1), ("nice piece", 0)]
    assert rows[0].comment.author_url == "http://x"
    assert [e.label for e in read_dataset(jsonl)] == [1, 0]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "content,label\nhello,maybe\n", "neither spam nor ham"),
        ("b.csv", "text,label\nhello,spam\n", "'content' and 'label'"),
        ("c.jsonl", '{"content": "x", "label": "spam"}\n{oops\n', "c.jsonl:2: not JSON"),
        ("d.jsonl", '["content"]\n', "expected a JSON object"),
        ("e.jsonl", '{"content": "", "label": "spam"}\n', "missing or empty"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path: Path, name: str, text: str,
                                          message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_dataset(path)


def test_non_utf8_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"content,label\n\xff\xfe,spam\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_dataset(bad)
    with pytest.raises(DatasetError, match="no such file"):
        read_dataset(tmp_path / "nope.csv")


def test_deduplicate_folds_case_and_space_majority_label() -> None:
    kept, folded = deduplicate([ex("Hello  World", 1), ex("hello world", 1), ex("HELLO world", 0),
                                ex("other", 0)])
    assert folded == 2
    assert sorted((e.key, e.label) for e in kept) == [("hello world", 1), ("other", 0)]


def test_holdout_split_keeps_duplicates_together_and_is_stable() -> None:
    examples = [ex(f"text number {i}", i % 2) for i in range(400)]
    examples += [ex("TEXT number 7", 1)]
    train, test = holdout_split(examples)
    assert 40 < len(test) < 130
    train_keys, test_keys = {e.key for e in train}, {e.key for e in test}
    assert not train_keys & test_keys
    assert holdout_split(examples) == (train, test)


def test_group_folds_drop_test_duplicates_from_training() -> None:
    examples = [ex("shared text", 1, "a"), ex("only a", 0, "a"), ex("Shared  text", 1, "b"),
                ex("only b", 0, "b")]
    folds = list(group_folds(examples))
    assert [g for g, _, _ in folds] == ["a", "b"]
    for _, train, test in folds:
        assert not {e.key for e in train} & {e.key for e in test}


def test_news_comments_are_ham_that_no_spam_model_trains_on() -> None:
    """The day-one evaluation's false positives are only honest if the bootstrap
    never saw these comments: no shipped spam-training text may be one of them."""
    news = news_comments()
    assert len(news) == 690
    assert {e.label for e in news} == {0}
    assert {e.group for e in news} == {"news-comments"}
    trained = {e.key for e in shipped_base()}
    assert not trained & {e.key for e in news}
