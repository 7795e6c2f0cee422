"""Model versions: on disk, shared between machines, and who serves which.

Owns the versioned model directory (``versions``: save, verify by sha256, load,
the current-version pointer, promote and roll back), the compiled tables a linear
model is served from (``lean``), the database-backed registry that several
machines share (``shared``), and the Redis notice that tells every worker a
pointer moved (``notify``).

May import: ``service.store`` and the frame's base; ``training``'s text code.
"""
