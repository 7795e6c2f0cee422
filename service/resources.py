"""The resources a request works with, built once by the app factory.

They live in ``app.extensions["commentmod"]``; domain code receives them as
arguments, views fetch them with :func:`resources`. Every optional resource is a
named, typed field, ``None`` where the settings turn it off, so that mypy and a
reader both know what a request may use. The types are imported for checking
only: this module sits in the frame's base and imports no wing at run time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app

if TYPE_CHECKING:
    from flask_limiter import Limiter

    from service.api.auth import KeyCache
    from service.api.perspective import RateWindow
    from service.cache.redis_client import RedisGate
    from service.cache.verdict_cache import VerdictCache
    from service.config import Settings
    from service.registry.notify import Subscriber
    from service.scoring.label_memory import LabelMemory
    from service.scoring.model import ModelHolder
    from service.scoring.shadow import ShadowModel
    from service.scoring.site_rules import RuleCache
    from service.scoring.toxicity import ToxicityHolder
    from service.store.db import Store
    from service.store.site_settings import SiteSettingsCache
    from service.store.writebehind import WriteBehind
    from training.text import Comment

EXTENSION = "commentmod"

FeedbackListener = Callable[[int, "Comment | None"], None]
"""Told of every stored label: the comment's id and, when the caller has it, the comment."""


@dataclass
class Resources:
    settings: Settings
    store: Store
    models: ModelHolder
    # Optional resources, set by the app factory's init steps; None where turned off.
    cache: VerdictCache | None = None  # flood counts + verdict cache (service.cache)
    redis: RedisGate | None = None  # the Redis client behind its breaker, if configured
    write_behind: WriteBehind | None = None  # checks recorded off the request path
    key_cache: KeyCache | None = None  # per-worker site-key cache
    limiter: Limiter | None = None  # Flask-Limiter, when COMMENTMOD_RATE_LIMIT is set
    site_settings: SiteSettingsCache | None = None  # per-site thresholds
    label_memory: LabelMemory | None = None  # labelled comments answer with their label
    site_rules: RuleCache | None = None  # per-site allow/block lists, built on first use
    shadow: ShadowModel | None = None  # a candidate scoring beside the serving model
    model_subscriber: Subscriber | None = None  # Redis notices of promoted models
    toxicity: ToxicityHolder | None = None  # the Perspective/Coral model family
    perspective_rate: RateWindow | None = None  # Perspective's per-key QPS window
    moderation_auth_cache: OrderedDict[str, tuple[int, int, float]] = field(
        default_factory=OrderedDict
    )  # HTTP Basic credentials already checked (HMAC digest -> id, session epoch, expiry)
    coral_seen: OrderedDict[str, tuple[bytes, float]] = field(
        default_factory=OrderedDict
    )  # signed Coral requests answered lately, without Redis (digest -> answer, expiry)
    # Hooks, called in order.
    after_fork: list[Callable[[], None]] = field(default_factory=list)
    on_close: list[Callable[[], None]] = field(default_factory=list)  # threads to stop
    on_feedback: list[FeedbackListener] = field(default_factory=list)
    readiness: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)


def resources() -> Resources:
    res: Resources = current_app.extensions[EXTENSION]
    return res
