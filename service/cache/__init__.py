"""Remembering verdicts and counting repeats: the Redis side of the service.

Owns the two-tier verdict cache (``verdict_cache``: in-process LRU, then Redis),
the flood counters (``flood``), the injected Redis client behind its circuit
breaker (``redis_client``) and every Redis key name with its lifetime (``keys``).

May import: ``service.scoring``, ``service.registry``, ``service.store`` and the
frame's base.
"""
