"""Every setting commentmod reads, in one place.

Settings come from defaults, then from ``COMMENTMOD_*`` environment variables,
then from an explicit mapping (tests). Each field carries its unit in its name
or its doc; :func:`load_settings` validates them all at start-up and raises a
:class:`~service.errors.ConfigurationError` that names the bad variable.

Relative ``model_dir`` and ``data_dir`` are resolved against the *home*
directory, never the current one, so every command finds the same models and
database from wherever it is run: ``COMMENTMOD_HOME`` if set, else the source
checkout the code runs from (a clone with ``make serve``), else
``$XDG_DATA_HOME/commentmod`` (``~/.local/share/commentmod``) for an installed
package.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from service.errors import ConfigurationError

PREFIX = "COMMENTMOD_"
ENVIRONMENTS = ("development", "production", "testing")


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {raw!r}")


def _setting(default: Any, doc: str, parse: Callable[[str], Any] | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "parse": parse})


CHECKOUT = Path(__file__).resolve().parent.parent


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """Where relative state paths live when ``COMMENTMOD_HOME`` is not set: the source
    checkout (a directory with pyproject.toml beside ``service/``), else the XDG data
    directory of the user."""
    environ = os.environ if environ is None else environ
    if (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "service").is_dir():
        return CHECKOUT
    xdg = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "commentmod"


@dataclass(frozen=True)
class Settings:
    """The service's configuration. Field ``x`` is read from ``COMMENTMOD_X``."""

    # ruff: noqa: RUF009 - _setting() returns a dataclasses.field with docs attached

    env: str = _setting("development", "development, production or testing")
    home: Path | None = _setting(
        None, "base of relative model_dir/data_dir; default: the source checkout, else "
        "$XDG_DATA_HOME/commentmod", Path,
    )
    model_dir: Path = _setting(Path("models"), "directory of model versions (under home)", Path)
    database_url: str = _setting("", "SQLAlchemy URL; default: SQLite file under data_dir")
    data_dir: Path = _setting(
        Path("var"), "where the default SQLite file and secret live (under home)", Path
    )
    redis_url: str = _setting("", "redis:// or rediss:// URL; empty: in-process cache only")
    secret_key: str = _setting("", "signs session cookies; required in production")
    log_level: str = _setting("INFO", "DEBUG, INFO, WARNING or ERROR")
    require_auth: bool = _setting(
        False, "JSON API needs a site key (always on in production)", _bool
    )
    max_request_bytes: int = _setting(1_048_576, "largest accepted request body, bytes", int)
    max_content_chars: int = _setting(20_000, "longest comment text, characters", int)
    max_field_chars: int = _setting(2_000, "longest other comment field, characters", int)
    batch_max: int = _setting(100, "most comments in one batch request", int)
    scoring_budget_seconds: float = _setting(
        10.0,
        "most scoring time one request may take before it is refused (413); keep it well "
        "under the worker timeout",
        float,
    )
    cache_ttl_seconds: int = _setting(3_600, "how long a verdict stays cached", int)
    cache_local_size: int = _setting(
        4_000, "in-process verdict cache entries (about 1.5 KB each, with their flood counts)", int
    )
    cache_local_ttl_seconds: float = _setting(
        60.0, "without Redis: how long a worker trusts its own cached verdict", float
    )
    hot_path: bool = _setting(
        True,
        "answer POST /api/v1/check and /1.1/comment-check from the lean WSGI path in front "
        "of Flask (same answers; false: through Flask's full request cycle)",
        _bool,
    )
    cache_sync_seconds: float = _setting(
        0.2,
        "with Redis: how often a worker sends its flood counts and hears of labels taken "
        "elsewhere; a repeat answered from the worker's own tier makes no Redis round trip "
        "(0: every check makes one)",
        float,
    )
    redis_timeout_seconds: float = _setting(0.05, "Redis connect and read timeout", float)
    redis_retry_after_seconds: float = _setting(
        2.0, "how long to skip Redis after a failure", float
    )
    akismet_unsure_is_spam: bool = _setting(
        True, "Akismet answers 'true' (held as spam) for an unsure verdict", _bool
    )
    akismet_monthly_limit: int = _setting(
        0, "checks per site per month reported by /1.2/usage-limit; 0: none", int
    )
    rate_limit: str = _setting("", "per key/IP limit, e.g. '600/minute'; empty: off")
    flood_window_seconds: int = _setting(3_600, "window of the flood counters", int)
    flood_spam_count: int = _setting(
        20, "same substantial text this many times in the window: spam (0: off)", int
    )
    flood_local_keys: int = _setting(
        100_000, "keys of a worker's own flood table (used while Redis is off or down)", int
    )
    reload_interval_seconds: float = _setting(
        2.0, "how often a worker checks the current-model pointer", float
    )
    site_rules_ttl_seconds: float = _setting(
        5.0, "how long a worker keeps the allow/block lists before re-reading them", float
    )
    model_registry: str = _setting(
        "file", "file (one machine) or database (instances on several hosts share it)"
    )
    notify_models: bool = _setting(
        True, "announce promote/rollback on Redis pub/sub when redis_url is set", _bool
    )
    site_settings_ttl_seconds: float = _setting(
        5.0, "how long a worker caches a site's settings (per-site thresholds)", float
    )
    key_cache_seconds: float = _setting(
        5.0, "how long a worker trusts a live site key it looked up (revocation delay)", float
    )
    retention_days: int = _setting(90, "unlabelled comment bodies older than this are purged", int)
    password_hash_cost: str = _setting(
        "standard", "moderator argon2id cost: standard (64 MiB, t=3) or fast (tests only)"
    )
    perspective_rate_limit: int = _setting(
        0, "Perspective API requests per key per minute; 0: no limit", int
    )
    coral_toxic_threshold: float = _setting(
        0.8, "default TOXICITY at or above which Coral comments are acted on", float
    )
    toxicity_bootstrap: bool = _setting(
        True, "serve trains the first toxicity model in the background when there is none",
        _bool,
    )
    metrics_allow: str = _setting(
        "", "client networks /metrics answers, comma-separated CIDRs, e.g. "
        "'127.0.0.1/32,10.0.0.0/8'; empty: any address"
    )
    metrics_token: str = _setting(
        "", "bearer token /metrics requires (Authorization: Bearer ...); empty: none"
    )
    bootstrap_data: Path | None = _setting(
        None, "data trained on when no model exists (default: shipped YouTube set)", Path
    )
    write_behind_queue: int = _setting(
        10_000,
        "checks a worker queues in memory for its background writer when the journal "
        "is off (with it, the journal is the queue); 0: write in the request; "
        "ENV=testing always writes in the request",
        int,
    )
    write_behind_batch: int = _setting(
        500, "most checks the background writer commits at once", int
    )
    write_behind_interval_seconds: float = _setting(
        0.2, "how often the background writer commits what is queued", float
    )
    write_behind_journal: bool = _setting(
        True,
        "journal queued checks under data_dir/journal before answering, so a killed "
        "worker loses none (off: a killed worker loses what it had queued)",
        _bool,
    )
    write_behind_fsync: bool = _setting(
        False,
        "fsync the journal on every check: queued checks also survive a power cut "
        "(costs a disk flush per request)",
        _bool,
    )

    label_memory_size: int = _setting(
        100_000,
        "labels a worker remembers so a labelled comment's next check answers with its "
        "label (0: off)",
        int,
    )
    label_memory_refresh_seconds: float = _setting(
        1.0, "how often a worker reads labels other workers took", float
    )

    auto_refresh: bool = _setting(
        False,
        "retrain, gate and promote by itself when sites give new labels (serve starts "
        "`commentmod refresh --loop` beside gunicorn)",
        _bool,
    )
    refresh_labels: int = _setting(50, "new labels that make a refresh due", int)
    refresh_minutes: float = _setting(
        10.0, "a model older than this with any new label makes a refresh due", float
    )
    refresh_check_seconds: float = _setting(
        30.0, "how often the refresh loop looks for new labels", float
    )

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def auth_required(self) -> bool:
        return self.production or self.require_auth

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'commentmod.sqlite3').resolve()}"

    def as_public_dict(self) -> dict[str, Any]:
        """Settings with secrets masked, for logs and ``commentmod config``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in {"secret_key", "metrics_token"} and value:
                value = "***"
            if f.name in {"database_url", "redis_url"} and value:
                value = _mask_url(str(value))
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


def _mask_url(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, doc) for every setting: the README table's source."""
    rows = []
    for f in fields(Settings):
        rows.append((PREFIX + f.name.upper(), repr(f.default), f.metadata["doc"]))
    return rows


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Defaults, then environment, then ``overrides``; validated."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = PREFIX + f.name.upper()
        if name in environ:
            parse = f.metadata["parse"] or str
            try:
                values[f.name] = parse(environ[name])
            except ValueError as exc:
                raise ConfigurationError(f"{name}={environ[name]!r} is invalid: {exc}") from exc
    for key, value in (overrides or {}).items():
        if key not in {f.name for f in fields(Settings)}:
            raise ConfigurationError(f"unknown setting {key!r}")
        values[key] = value
    settings = _resolved(Settings(**values), environ)
    _validate(settings)
    return _with_secret(settings)


# COMMENTMOD_* variables that are read but are not settings: gunicorn's
# (service/gunicorn_conf.py, docs/configuration.md) and the test suite's.
PROCESS_VARIABLES = frozenset({"BIND", "WORKERS", "WORKER_TIMEOUT", "BACKLOG", "MAX_REQUESTS"})
TEST_PREFIXES = ("TEST_", "FUZZ_", "PG_BIN")


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line for each ``COMMENTMOD_*`` variable nothing reads (a typo, or a setting
    that does not exist), naming the closest setting: it would otherwise be ignored
    without a word."""
    import difflib

    environ = os.environ if environ is None else environ
    known = sorted({PREFIX + f.name.upper() for f in fields(Settings)}
                   | {PREFIX + name for name in PROCESS_VARIABLES})
    out = []
    for name in sorted(environ):
        rest = name.removeprefix(PREFIX)
        if rest == name or name in known or rest.startswith(TEST_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.append(f"{name} is not a setting and is ignored{hint}; see docs/configuration.md")
    return out


def _resolved(s: Settings, environ: Mapping[str, str]) -> Settings:
    """Home made absolute, and relative model_dir/data_dir put under it."""
    home = (s.home or default_home(environ)).expanduser().resolve()
    model_dir, data_dir = s.model_dir.expanduser(), s.data_dir.expanduser()
    return dataclasses.replace(
        s,
        home=home,
        model_dir=model_dir if model_dir.is_absolute() else home / model_dir,
        data_dir=data_dir if data_dir.is_absolute() else home / data_dir,
    )


def _validate(s: Settings) -> None:
    if s.env not in ENVIRONMENTS:
        raise ConfigurationError(f"{PREFIX}ENV={s.env!r}: expected one of {ENVIRONMENTS}")
    positive = (
        "max_request_bytes",
        "max_content_chars",
        "max_field_chars",
        "batch_max",
        "cache_local_size",
        "flood_window_seconds",
        "flood_local_keys",
        "retention_days",
    )
    for name in positive:
        if getattr(s, name) <= 0:
            raise ConfigurationError(f"{PREFIX}{name.upper()} must be positive")
    if s.cache_local_ttl_seconds < 0 or s.flood_spam_count < 0:
        raise ConfigurationError(
            f"{PREFIX}CACHE_LOCAL_TTL_SECONDS and {PREFIX}FLOOD_SPAM_COUNT must be 0 or more"
        )
    if s.redis_retry_after_seconds < 0:
        raise ConfigurationError(f"{PREFIX}REDIS_RETRY_AFTER_SECONDS must be 0 or more")
    if s.write_behind_queue < 0 or s.write_behind_batch <= 0:
        raise ConfigurationError(
            f"{PREFIX}WRITE_BEHIND_QUEUE must be 0 or more and {PREFIX}WRITE_BEHIND_BATCH positive"
        )
    if not 0 < s.write_behind_interval_seconds <= 60:
        raise ConfigurationError(f"{PREFIX}WRITE_BEHIND_INTERVAL_SECONDS must be in (0, 60]")
    if s.label_memory_size < 0 or s.label_memory_refresh_seconds < 0:
        raise ConfigurationError(
            f"{PREFIX}LABEL_MEMORY_SIZE and {PREFIX}LABEL_MEMORY_REFRESH_SECONDS must be 0 or more"
        )
    if s.refresh_labels <= 0 or s.refresh_minutes <= 0 or s.refresh_check_seconds <= 0:
        raise ConfigurationError(
            f"{PREFIX}REFRESH_LABELS, {PREFIX}REFRESH_MINUTES and "
            f"{PREFIX}REFRESH_CHECK_SECONDS must be positive"
        )
    if s.akismet_monthly_limit < 0:
        raise ConfigurationError(f"{PREFIX}AKISMET_MONTHLY_LIMIT must be 0 (none) or more")
    metrics_networks(s)  # a bad network is refused at start-up, named
    if not 0 < s.scoring_budget_seconds <= 60:
        raise ConfigurationError(f"{PREFIX}SCORING_BUDGET_SECONDS must be in (0, 60]")
    if s.cache_ttl_seconds < 0:
        raise ConfigurationError(f"{PREFIX}CACHE_TTL_SECONDS must be 0 or more")
    if not 0 <= s.cache_sync_seconds <= 5:
        raise ConfigurationError(f"{PREFIX}CACHE_SYNC_SECONDS must be in [0, 5]")
    if not 0 < s.redis_timeout_seconds <= 5:
        raise ConfigurationError(f"{PREFIX}REDIS_TIMEOUT_SECONDS must be in (0, 5]")
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"{PREFIX}REDIS_URL must start with redis://, rediss:// or unix://"
        )
    if s.model_registry not in {"file", "database"}:
        raise ConfigurationError(
            f"{PREFIX}MODEL_REGISTRY={s.model_registry!r}: expected file or database"
        )
    if s.key_cache_seconds < 0:
        raise ConfigurationError(f"{PREFIX}KEY_CACHE_SECONDS must be 0 or more")
    if s.site_settings_ttl_seconds < 0:
        raise ConfigurationError(f"{PREFIX}SITE_SETTINGS_TTL_SECONDS must be 0 or more")
    if s.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigurationError(f"{PREFIX}LOG_LEVEL={s.log_level!r} is not a log level")
    if s.password_hash_cost not in {"standard", "fast"} or (
        s.production and s.password_hash_cost != "standard"  # noqa: S105 - a cost name
    ):
        raise ConfigurationError(
            f"{PREFIX}PASSWORD_HASH_COST={s.password_hash_cost!r}: expected standard "
            "(or fast, outside production)"
        )
    if s.production and not s.secret_key:
        raise ConfigurationError(f"{PREFIX}SECRET_KEY is required when {PREFIX}ENV=production")
    if s.production and not s.database_url:
        raise ConfigurationError(
            f"{PREFIX}DATABASE_URL is required when {PREFIX}ENV=production "
            "(SQLite is the single-machine default only)"
        )


def _with_secret(s: Settings) -> Settings:
    """Outside production, keep a generated secret in data_dir across restarts."""
    if s.secret_key:
        return s
    path = s.data_dir / "secret_key"
    try:
        s.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot keep a secret key in {path}: {exc}") from exc
    return dataclasses.replace(s, secret_key=key)


def metrics_networks(s: Settings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of ``metrics_allow`` (empty: no limit by address)."""
    out = []
    for part in s.metrics_allow.split(","):
        if not part.strip():
            continue
        try:
            out.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError as exc:
            raise ConfigurationError(
                f"{PREFIX}METRICS_ALLOW: {part.strip()!r} is not a network (e.g. 10.0.0.0/8)"
            ) from exc
    return out
