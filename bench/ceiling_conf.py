"""gunicorn settings for the ceiling app: commentmod's production settings, minus its hooks.

Every plain setting (workers, worker class, backlog, keepalive, preload,
timeouts...) is copied from service/gunicorn_conf.py so both servers run the
same way; the hooks are left out because they load commentmod's app.
"""

from __future__ import annotations

import types

from service import gunicorn_conf as _production

globals().update(
    {
        name: value
        for name, value in vars(_production).items()
        if not name.startswith("_")
        and not callable(value)
        and not isinstance(value, types.ModuleType)
    }
)
logger_class = _production.logger_class  # a class: the filter above skips it
