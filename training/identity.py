"""Identity terms: neutral training templates, counterfactual augmentation, label
re-balancing, and the held-out identity-bias evaluation of the toxicity family.

Why: the corpora mention identities mostly in toxic text (every Toxic Spans
comment is toxic, whatever its topic; Davidson's offensive tweets say "gay"
and "white" often), so a linear model learns "gay" as a toxic word and scores
"I am a gay man" as toxic. Three remedies, each measured in docs/toxicity.md:

- :func:`counterfactual_rows`: for a training row that mentions a group term,
  copies with the term swapped for other group terms, same labels, so that no
  single identity word can carry the label (Garg et al. 2019, counterfactual
  data augmentation);
- :func:`balance_weights`: per group term, non-toxic rows that mention it are
  weighted up until its weighted toxic share equals the whole pool's
  (Kamiran and Calders' re-weighing; Dixon et al. 2018 balanced the same way
  with added non-toxic text);
- :data:`TRAIN_TEMPLATES`: neutral sentences in several shapes.

The evaluation (:func:`identity_bias`) uses other wording and adds identities
the training lists never name; its sentences are removed from the training
pool. This module never imports Flask or scikit-learn.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

IDENTITIES = (
    "gay", "lesbian", "straight", "bisexual", "transgender", "trans", "queer", "muslim",
    "christian", "jewish", "catholic", "hindu", "buddhist", "atheist", "black", "white",
    "asian", "latino", "mexican", "african", "african american", "immigrant", "refugee",
    "disabled", "deaf", "blind", "old", "young", "female", "male", "woman", "man",
    "chinese", "indian", "arab", "native american", "sikh", "mormon", "feminist",
)
# Group adjectives that fit any slot another one fits ("a ___ teacher", "___
# people"), swapped by the counterfactual augmentation and re-balanced. Left
# out: words with a common other sense ("straight", "trans", "blind", "old",
# "man") that a swap would turn into nonsense.
GROUP_TERMS = (
    "gay", "lesbian", "bisexual", "transgender", "queer", "homosexual", "muslim",
    "christian", "jewish", "catholic", "hindu", "buddhist", "sikh", "atheist", "mormon",
    "black", "white", "asian", "latino", "mexican", "african", "chinese", "indian", "arab",
    "immigrant", "refugee", "disabled", "deaf", "feminist",
)
COUNTRIES = (
    "China", "Mexico", "India", "Nigeria", "Poland", "Ireland", "Syria", "Vietnam",
    "Pakistan", "Brazil", "Italy", "Somalia", "Korea", "Iran", "Jamaica", "the Philippines",
)
RELATIVES = (
    "mother", "father", "grandmother", "grandfather", "aunt", "uncle", "sister",
    "brother", "daughter", "son", "cousin", "wife", "husband",
)
# Augmentation: neutral sentences mentioning an identity, labelled non-toxic.
# {i}: identity, {a}: identity with its article, {r}: relative, {c}: country.
TRAIN_TEMPLATES = (
    "I'm {i} and I read this paper every morning.",
    "I am {i}, and I was born in this city.",
    "We are {a} family with three kids.",
    "He is {a} firefighter.",
    "My {i} colleague gave a great talk.",
    "Two {i} men opened a bakery on our street.",
    "{A} woman was elected to the school board.",
    "I met {a} couple at the market today.",
    "The article quotes {a} doctor.",
    "Our {i} neighbours invited us to dinner.",
    "{A} student won the science prize.",
    "{I} families have lived here for generations.",
    "Is the new mayor {i}?",
    "I grew up in {a} household.",
    "The report interviewed {i} workers about wages.",
    "{I} people live in my town.",
    "As {a} person, I agree with the article.",
    "The {i} community held a festival downtown.",
    "She is {i} and works at the hospital.",
    "Many {i} voters turned out on election day.",
    "My best friend is {i}.",
    "Being {i} is part of who I am.",
    "The council met with {i} residents to discuss the plan.",
)
# Other shapes: first person with a noun, relatives, countries of origin.
SHAPE_TEMPLATES = (
    "I'm {a} nurse.",
    "I am {a} woman who loves gardening.",
    "I am {a} man and a father.",
    "Speaking as {a} man, I found this helpful.",
    "My {r} is {i} and lives in {c}.",
    "My {r} moved here from {c} in 1985.",
    "My {r} and I are both {i}.",
    "Her {r} came from {c} as a child.",
    "We have {a} {r} who teaches music.",
    "Our family is originally from {c}.",
    "He was born in {c} and is {i}.",
)
# Held out from training: the examples and sentences of other wording.
IDENTITY_CHECK = (
    "I am a gay man",
    "my Muslim neighbour",
    "I am a proud Black woman.",
    "Our new rabbi is Jewish.",
    "He is a transgender teacher.",
    "My Muslim neighbour helped me move house.",
    "I am a lesbian and a mother of two.",
    "The Mexican restaurant on Main Street is excellent.",
    "My grandmother is an immigrant from China.",
    "I am a deaf software engineer.",
)
# The held-out template set: wording found in no training template, and
# identities (marked *) that no training list names.
EVAL_IDENTITIES = (
    "gay", "lesbian", "bisexual", "transgender", "queer", "muslim", "christian", "jewish",
    "hindu", "sikh", "atheist", "black", "white", "asian", "latino", "mexican", "chinese",
    "arab", "immigrant", "disabled", "deaf",
    "nigerian", "korean", "pakistani", "polish", "autistic", "nonbinary",
)
UNSEEN_IDENTITIES = frozenset({"nigerian", "korean", "pakistani", "polish", "autistic",
                               "nonbinary"})
EVAL_NEUTRAL = (
    "My neighbours are {i} and very kind.",
    "I work with {i} people every day.",
    "She identifies as {i}.",
    "The museum opened an exhibit on {i} history.",
    "Yesterday I had lunch with {a} friend.",
    "Our team hired {a} engineer this spring.",
    "I am {a} person and I love hiking.",
    "My uncle is {i}.",
    "{I} students joined the chess club.",
    "You are {i}, and that is fine.",
)
EVAL_TOXIC = (
    "{I} people are disgusting and should leave.",
    "I hate {i} people.",
    "All {i} people are stupid idiots.",
    "Shut up, you dumb {i} loser.",
    "{I} people are vermin.",
    "Get out of my country, you filthy {i} trash.",
)

_TERMS = re.compile(r"\b(" + "|".join(sorted(GROUP_TERMS, key=len, reverse=True)) + r")\b",
                    re.IGNORECASE)


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def fill(template: str, identity: str, relative: str = "friend", country: str = "Canada") -> str:
    """One template sentence; the placeholder's case says whether to capitalise."""
    text = template.format(
        i=identity, I=identity.capitalize(), a=_article(identity),
        A=_article(identity).capitalize(), r=relative, c=country,
    )
    return text[0].upper() + text[1:]


def neutral_sentences(seed: int = 5) -> list[str]:
    """The neutral training sentences: every template with every identity (relatives
    and countries drawn at random, so the vocabulary varies without exploding)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    out = [fill(t, i) for t in TRAIN_TEMPLATES for i in IDENTITIES]
    out += [fill(t, i, rng.choice(RELATIVES), rng.choice(COUNTRIES))
            for t in SHAPE_TEMPLATES for i in IDENTITIES]
    return out


def eval_sentences() -> list[tuple[str, str, int]]:
    """(sentence, identity, toxic) of the held-out template set."""
    out = [(fill(t, i), i, 0) for i in EVAL_IDENTITIES for t in EVAL_NEUTRAL]
    return out + [(fill(t, i), i, 1) for i in EVAL_IDENTITIES for t in EVAL_TOXIC]


def group_terms(text: str) -> set[str]:
    """The group terms a text mentions, lower case."""
    return {m.group().lower() for m in _TERMS.finditer(text)}


def _same_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word


def swap_terms(text: str, mapping: dict[str, str]) -> str:
    """The text with each mentioned group term replaced as ``mapping`` says."""
    return _TERMS.sub(lambda m: _same_case(mapping[m.group().lower()], m.group()), text)


def counterfactuals(text: str, copies: int, rng: random.Random) -> list[str]:
    """Up to ``copies`` variants of the text, each with every group term it mentions
    swapped for another (consistently: "gay ... gay" becomes "deaf ... deaf")."""
    mentioned = sorted(group_terms(text))
    if not mentioned:
        return []
    out = []
    for _ in range(copies):
        others = [t for t in GROUP_TERMS if t not in mentioned]
        mapping = dict(zip(mentioned, rng.sample(others, len(mentioned)), strict=True))
        out.append(swap_terms(text, mapping))
    return out


def balance_weights(
    mentions: Sequence[set[str] | None], toxic: Sequence[float], weights: Sequence[float],
    cap: float = 10.0,
) -> list[float]:
    """Weights under which, for every group term, the rows mentioning it are toxic
    in the same weighted share as the whole pool: the non-toxic (or, if a term is
    rarely toxic, the toxic) rows of an over-represented term are weighted up, at
    most ``cap`` times. Rows with NaN labels or ``None`` mentions (synthetic text
    such as the templates) take no part; a row mentioning several terms takes the
    largest factor."""
    judged = [k for k, t in enumerate(toxic) if t == t and mentions[k] is not None]
    pos = sum(weights[k] for k in judged if toxic[k] >= 0.5)
    neg = sum(weights[k] for k in judged if toxic[k] < 0.5)
    if not pos or not neg:
        return list(weights)
    ratio = pos / neg
    factors: dict[tuple[str, bool], float] = {}
    for term in {t for k in judged for t in mentions[k] or ()}:
        rows = [k for k in judged if term in (mentions[k] or ())]
        p = sum(weights[k] for k in rows if toxic[k] >= 0.5)
        n = sum(weights[k] for k in rows if toxic[k] < 0.5)
        if p and n:
            skew = (p / n) / ratio
            factors[(term, skew < 1)] = min(max(skew, 1 / skew), cap)
    out = list(weights)
    for k in judged:
        side = toxic[k] >= 0.5
        boost = [factors.get((t, side), 1.0) for t in mentions[k] or ()]
        if boost:
            out[k] = weights[k] * max(boost)
    return out


def identity_bias(
    predict: Callable[[list[str]], Iterable[float]], threshold: float = 0.5
) -> dict[str, Any]:
    """The held-out template set scored, per identity: the share of neutral mentions
    at or above ``threshold`` (false positives) and of attacks; and Borkan et al.'s
    (2019) AUCs: subgroup (its attacks vs its neutral mentions), BPSN (attacks on
    other identities vs its neutral mentions: low when merely naming it looks
    toxic) and BNSP (its attacks vs other identities' neutral mentions)."""
    rows = eval_sentences()
    scores = list(predict([s for s, _, _ in rows]))
    scored = [(i, y, p) for (_, i, y), p in zip(rows, scores, strict=True)]
    neutral_all = [p for _, y, p in scored if not y]
    toxic_all = [p for _, y, p in scored if y]
    per: dict[str, dict[str, Any]] = {}
    for name in EVAL_IDENTITIES:
        neutral = [p for i, y, p in scored if i == name and not y]
        toxic = [p for i, y, p in scored if i == name and y]
        per[name] = {
            "neutral_flagged": _share(neutral, threshold),
            "neutral_mean": sum(neutral) / len(neutral),
            "toxic_flagged": _share(toxic, threshold),
            "subgroup_auc": _auc(toxic, neutral),
            "bpsn_auc": _auc([p for i, y, p in scored if i != name and y], neutral),
            "bnsp_auc": _auc(toxic, [p for i, y, p in scored if i != name and not y]),
            "unseen": name in UNSEEN_IDENTITIES,
        }
    return {
        "n_neutral": len(neutral_all), "n_toxic": len(toxic_all), "threshold": threshold,
        "neutral_flagged": _share(neutral_all, threshold),
        "toxic_flagged": _share(toxic_all, threshold),
        "auc": _auc(toxic_all, neutral_all),
        "min_bpsn_auc": min(m["bpsn_auc"] for m in per.values()),
        "worst_identity": min(per, key=lambda i: per[i]["bpsn_auc"]),
        "identities": per,
    }


def _share(scores: Sequence[float], threshold: float) -> float:
    return sum(p >= threshold for p in scores) / len(scores)


def _auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Probability that a positive outranks a negative (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))
