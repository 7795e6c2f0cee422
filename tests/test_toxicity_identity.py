"""Identity debiasing of the toxicity family: term swaps, re-weighing, held-out
identity sentences kept out of training, and the identity-bias evaluation."""

from __future__ import annotations

import math
import random

import pytest

from training import identity
from training.features import dedup_key
from training.toxicity import default_data_dir, format_identity_bias, training_rows


@pytest.mark.parametrize(("text", "mapping", "expected"), [
    ("I am a gay man", {"gay": "deaf"}, "I am a deaf man"),
    ("Muslim voters and muslim MPs", {"muslim": "sikh"}, "Sikh voters and sikh MPs"),
    ("GAY and Jewish", {"gay": "asian", "jewish": "hindu"}, "ASIAN and Hindu"),
    ("gayety and blackbird stay", {}, "gayety and blackbird stay"),
])
def test_swap_terms_keeps_case_and_whole_words(
    text: str, mapping: dict[str, str], expected: str
) -> None:
    assert identity.swap_terms(text, mapping) == expected


def test_counterfactuals_name_other_groups_consistently() -> None:
    text = "Gay people are fine; gay people vote."
    copies = identity.counterfactuals(text, 3, random.Random(0))
    assert len(copies) == 3
    for copy in copies:
        (term,) = identity.group_terms(copy)
        assert term != "gay"
        assert identity.swap_terms(copy, {term: "gay"}) == text
    assert identity.counterfactuals("nothing to swap here", 3, random.Random(0)) == []


def test_balance_weights_equalise_each_terms_toxic_share() -> None:
    mentions: list[set[str] | None] = [{"gay"}, {"gay"}, {"gay"}, {"gay"}, set(), set(),
                                       {"jewish"}, {"jewish"}, {"jewish"}, None]
    toxic = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    weights = [1.0] * 10
    out = identity.balance_weights(mentions, toxic, weights)
    pool_share = 5 / 9  # of the nine rows that take part, before re-weighing
    for term in ("gay", "jewish"):
        rows = [k for k in range(9) if term in (mentions[k] or ())]
        share = sum(out[k] for k in rows if toxic[k]) / sum(out[k] for k in rows)
        assert math.isclose(share, pool_share)
    assert out[4] == out[5] == out[9] == 1.0  # no term, or synthetic: untouched


def test_balance_weights_respect_the_cap() -> None:
    mentions: list[set[str] | None] = [{"gay"}] * 10 + [set()] * 10
    toxic = [1.0] * 9 + [0.0] + [1.0] + [0.0] * 9  # "gay" 9 times as often toxic as not
    out = identity.balance_weights(mentions, toxic, [1.0] * 20, cap=4.0)
    assert out[9] == 4.0
    assert out.count(1.0) == 19


def test_template_placeholders_all_fill() -> None:
    sentences = identity.neutral_sentences() + [s for s, _, _ in identity.eval_sentences()]
    assert not [s for s in sentences if "{" in s or "}" in s]
    assert "I am an immigrant person and I love hiking." in sentences


def test_held_out_identity_sentences_never_reach_training() -> None:
    keys = {dedup_key(r.text) for r in training_rows(default_data_dir())}
    held_out = list(identity.IDENTITY_CHECK) + [s for s, _, _ in identity.eval_sentences()]
    assert not [s for s in held_out if dedup_key(s) in keys]
    train_wording = identity.TRAIN_TEMPLATES + identity.SHAPE_TEMPLATES
    assert not set(train_wording) & set(identity.EVAL_NEUTRAL + identity.EVAL_TOXIC)


def test_identity_bias_reports_every_identity() -> None:
    def word_model(texts: list[str]) -> list[float]:
        """Flags attacks and, wrongly, every neutral mention of 'gay'."""
        return [0.9 if "hate" in t or "vermin" in t or "gay" in t.lower() else 0.1
                for t in texts]

    ib = identity.identity_bias(word_model)
    assert set(ib["identities"]) == set(identity.EVAL_IDENTITIES)
    gay, deaf = ib["identities"]["gay"], ib["identities"]["deaf"]
    assert gay["neutral_flagged"] == 1.0 and deaf["neutral_flagged"] == 0.0
    assert gay["bpsn_auc"] < deaf["bpsn_auc"]
    assert ib["worst_identity"] == "gay"
    table = "\n".join(format_identity_bias(ib))
    assert "gay " in table and "nigerian*" in table and "BPSN" in table
