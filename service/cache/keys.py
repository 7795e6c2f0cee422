"""Every Redis key commentmod writes, with its lifetime beside it (as RQ keeps them).

All keys share one prefix so that a Redis shared with other software can be
inspected (``SCAN MATCH commentmod:*``) and never collides. Keys are templates
filled with hex digests, never with raw comment text or addresses.
"""

from __future__ import annotations

PREFIX = "commentmod:"

# A cached verdict (JSON). ``key`` hashes the model version and the comment's
# verdict-relevant fields; ``bucket`` is the flood bucket the model saw.
# TTL: settings.cache_ttl_seconds.
VERDICT = PREFIX + "verdict:{key}:{bucket}"

# Invalidation generation of one comment (its fields, any model version):
# INCR on feedback; a cached verdict carries the generation it was computed at
# and is served only while they match. TTL: settings.cache_ttl_seconds, renewed
# on each INCR, so it outlives every verdict it guards.
GENERATION = PREFIX + "gen:{fields}"

# Flood counters: one per normalised text / client address and window slot
# (slot = unix time // flood_window_seconds). TTL: 2 x flood_window_seconds,
# long enough for the next slot to read it as "previous".
FLOOD_TEXT = PREFIX + "flood:text:{digest}:{slot}"
FLOOD_IP = PREFIX + "flood:ip:{digest}:{slot}"

# Failed moderator logins (web and HTTP Basic) per name and per client address,
# both as digests (service/login_throttle.py). TTL: login_throttle.WINDOW (15
# minutes), set at the first failure of a window.
LOGIN_NAME = PREFIX + "login:name:{digest}"
LOGIN_ADDRESS = PREFIX + "login:addr:{digest}"

# A signed Coral request already answered: its answer (JSON, "" for 204), keyed
# by a digest of tenant, signature header and body. A replay within the TTL is
# answered from here, never scored or recorded again (service/api/coral.py).
# TTL: coral.REPLAY_SECONDS (24 hours).
CORAL_SEEN = PREFIX + "coral:seen:{digest}"

# Rate-limit counters, written by the ``limits`` library under this prefix.
# TTL: the window of the limit (set by the library).
LIMITS = PREFIX + "limits"


def verdict(key: str, bucket: int) -> str:
    return VERDICT.format(key=key, bucket=bucket)


def generation(fields: str) -> str:
    return GENERATION.format(fields=fields)


def flood_text(digest: str, slot: int) -> str:
    return FLOOD_TEXT.format(digest=digest, slot=slot)


def flood_ip(digest: str, slot: int) -> str:
    return FLOOD_IP.format(digest=digest, slot=slot)


def flood_ttl(window_seconds: int) -> int:
    return 2 * window_seconds


def login_name(digest: str) -> str:
    return LOGIN_NAME.format(digest=digest)


def login_address(digest: str) -> str:
    return LOGIN_ADDRESS.format(digest=digest)


def coral_seen(digest: str) -> str:
    return CORAL_SEEN.format(digest=digest)

# Pub/sub channel (no key, no TTL): a label was taken for a comment; the message
# is the comment's fields digest. Every worker drops that comment's verdicts from
# its own tier and reads new labels (service/cache/sync.py).
INVALIDATE_CHANNEL = PREFIX + "invalidate"
