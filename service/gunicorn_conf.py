"""Production gunicorn settings; ``commentmod serve`` and the Dockerfile use this file.

Sync workers, two per core: scoring is CPU-bound and threads would fight over
the GIL (docs/performance.md). The app is preloaded in the master so the model
is shared copy-on-write by the workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from typing import Any

from gunicorn.glogging import Logger


class QuietAccessLogger(Logger):
    """gunicorn's logger, minus the access log's cost while the access log is off.

    With a log config set, gunicorn formats every request's access-log fields
    (a dozen atoms, a timestamp) even when no access log is written: on a cache
    hit that cost a fifth of what commentmod's own code costs. The app logs failed
    requests itself (service/app.py).
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = QuietAccessLogger
bind = os.environ.get("COMMENTMOD_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("COMMENTMOD_WORKERS", str(2 * multiprocessing.cpu_count())))
worker_class = "sync"
preload_app = True
timeout = int(os.environ.get("COMMENTMOD_WORKER_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
backlog = int(os.environ.get("COMMENTMOD_BACKLOG", "256"))  # bounded queue past saturation
max_requests = int(os.environ.get("COMMENTMOD_MAX_REQUESTS", "0"))
max_requests_jitter = 100
limit_request_line = 8190
limit_request_fields = 200  # WordPress sends many HTTP_* fields as headers too
accesslog = None  # the app logs failed requests itself, as JSON
loglevel = os.environ.get("COMMENTMOD_LOG_LEVEL", "info").lower()
# gunicorn's own messages as JSON lines too, like the app's (service/logs.py).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json",
                   "stream": "ext://sys.stderr"},
    },
    "root": {"handlers": ["stderr"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(),
                           "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        "alembic": {"level": "WARNING"},
    },
}
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    from service.metrics import mark_worker_dead

    mark_worker_dead(worker.pid)


def release_free_heap() -> None:
    """Hand the C heap's free pages back to the kernel (glibc's ``malloc_trim``).

    Loading the models leaves parsed JSON and temporary arrays freed but still
    resident in the master, and a forked worker's RSS counts every page the master
    holds: trimming before each fork took about 7 MB off every worker
    (docs/performance.md, "Every model shared"). Not glibc: nothing to do."""
    import contextlib
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def pre_fork(server: Any, worker: Any) -> None:
    # Whatever the master holds now (the preloaded app and models) is never scanned
    # by a worker's cyclic collector: no 100 ms collections walking the model, and
    # no copy-on-write page copies caused by the collector touching it.
    gc.freeze()
    release_free_heap()


# Stop signals that reached a worker while it booted (see post_fork).
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_early_stop: list[int] = []


def _remember_stop(signum: int, frame: Any) -> None:
    _early_stop.append(signum)


def post_fork(server: Any, worker: Any) -> None:
    # A worker boots with the master's signal handlers, which only queue a signal
    # for the master's loop: a stop that arrived now (a restart right after a start,
    # a worker recycled by max_requests as the service stops) was swallowed, the
    # worker served on until the master SIGKILLed it 20 s later, and its journal was
    # left for the next start. Keep such a signal until gunicorn's own handlers are
    # in place (post_worker_init), then deliver it again.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _remember_stop)
    from service.app import after_fork
    from service.resources import EXTENSION
    from service.wsgi import app

    after_fork(app)
    # A model this worker swaps in later is frozen too (service/scoring/model.py).
    app.extensions[EXTENSION].models.freeze_after_load = True


def post_worker_init(worker: Any) -> None:
    """gunicorn's handlers are set: a stop signal kept since post_fork is sent again."""
    for sig in dict.fromkeys(_early_stop):
        os.kill(os.getpid(), sig)


def worker_exit(server: Any, worker: Any) -> None:
    from service.resources import EXTENSION
    from service.store.writebehind import stop
    from service.wsgi import app

    stop(app.extensions[EXTENSION])  # checks still queued are written before the worker goes


_refresher: Any = None


def when_ready(server: Any) -> None:
    """With COMMENTMOD_AUTO_REFRESH on, run ``commentmod refresh --loop`` beside the
    workers: its own process (scikit-learn never enters a worker), stopped with us."""
    import subprocess
    import sys

    from service.config import load_settings

    global _refresher
    if load_settings().auto_refresh:
        _refresher = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "refresh", "--loop"]
        )


def on_exit(server: Any) -> None:
    if _refresher is not None and _refresher.poll() is None:
        _refresher.terminate()
        _refresher.wait(timeout=30)
