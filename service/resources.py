"""The resources a request works with, built once by the app factory.

They live in ``app.extensions["commentmod"]``; domain code receives them as
arguments, views fetch them with :func:`resources`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from service.config import Settings
from service.model import ModelHolder
from service.store import Store

EXTENSION = "commentmod"


@dataclass
class Resources:
    settings: Settings
    store: Store
    models: ModelHolder
    # Optional resources added by later features (cache, redis, limiter...).
    extras: dict[str, Any] = field(default_factory=dict)


def resources() -> Resources:
    res: Resources = current_app.extensions[EXTENSION]
    return res
