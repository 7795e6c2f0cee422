"""The ``commentmod`` command: serve, train, evaluate, manage models and the database.

Each command group lives beside the feature it drives; this module wires them
into one click group. Training code is imported inside the commands that need
it, so ``serve`` never loads it into the web workers.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from service.config import Settings, describe, load_settings
from service.errors import CommentmodError
from service.keys_cli import keys
from service.registry import Registry


class Context:
    """Settings and lazily built resources for one CLI invocation."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._store: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def registry(self) -> Registry:
        return Registry(self.settings.model_dir)

    @property
    def store(self) -> Any:
        if self._store is None:
            from service import migrate
            from service.store import Store, engine_for

            self._store = Store(engine_for(self.settings.resolved_database_url))
            migrate.upgrade(self._store.engine)
        return self._store


pass_ctx = click.make_pass_decorator(Context, ensure=True)


class Group(click.Group):
    """Turns domain errors into one clear line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommentmodError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)


@click.group(cls=Group)
@click.version_option(package_name="commentmod")
def main() -> None:
    """commentmod: comment moderation for news sites."""


main.add_command(keys)


# --- serve -------------------------------------------------------------------


def ensure_model(obj: Context) -> str:
    """The current spam model, training one from the shipped data if there is none."""
    current = obj.registry.current("spam")
    if current is not None:
        return current
    from training.train import bootstrap

    click.echo(
        "no model yet: training the bootstrap model from the shipped "
        "YouTube Spam Collection (CC BY 4.0)...",
        err=True,
    )
    result = bootstrap(obj.registry, obj.settings.bootstrap_data)
    m = result.metrics
    click.echo(
        f"bootstrap model {result.version}: held-out accuracy {m['accuracy']:.2%}, "
        f"MCC {m['mcc']:.3f}, ROC AUC {m['roc_auc']:.3f}",
        err=True,
    )
    return result.version


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64), help="default: 2 per core")
@click.option("--no-bootstrap", is_flag=True, help="fail instead of training a first model")
@pass_ctx
def serve(obj: Context, host: str, port: int, workers: int | None, no_bootstrap: bool) -> None:
    """Run the service under gunicorn (service/gunicorn_conf.py)."""
    obj.store  # noqa: B018 - migrates the schema before the workers start
    if no_bootstrap and obj.registry.current("spam") is None:
        raise click.ClickException("no current model and --no-bootstrap given")
    version = ensure_model(obj)
    if obj.registry.current("toxicity") is None:  # too slow to train here (about 2 CPU-min)
        click.echo("no toxicity model: the Perspective and Coral endpoints score spam only / "
                   "answer 503 until `commentmod toxicity train --promote`", err=True)
    prom_dir = obj.settings.data_dir.resolve() / "prometheus"
    shutil.rmtree(prom_dir, ignore_errors=True)
    prom_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
        "COMMENTMOD_BIND": f"{host}:{port}",
    }
    if workers:
        env["COMMENTMOD_WORKERS"] = str(workers)
    conf = Path(__file__).with_name("gunicorn_conf.py")
    click.echo(f"serving model {version} on http://{host}:{port}", err=True)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(conf), "service.wsgi:app"]
    os.execve(sys.executable, argv, env)  # noqa: S606 - replaces this process with gunicorn


# --- train and evaluate -------------------------------------------------------


@main.command()
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(path_type=Path),
    help="YouTube CSV (file or directory), SMS TSV, or CSV/JSONL with content,label",
)
@click.option("--promote", is_flag=True, help="make the new model current")
@click.option("--json", "as_json", is_flag=True, help="print a machine-readable summary")
@pass_ctx
def train(obj: Context, data: tuple[Path, ...], promote: bool, as_json: bool) -> None:
    """Train a new spam model version (default data: the shipped YouTube set)."""
    from training.datasets import DatasetError, shipped_youtube
    from training.train import load_examples, train_model

    description = [str(p) for p in data] or ["YouTube Spam Collection v1 (shipped)"]
    try:
        examples = load_examples(list(data)) if data else shipped_youtube()
        result = train_model(examples, obj.registry, data_description=description)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    if promote:
        obj.registry.set_current(result.version, action="promote")
        result.promoted = True
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2))
        return
    from training.evaluate import format_table

    click.echo(
        f"trained {result.version} on {result.n_examples} examples "
        f"({result.folded_duplicates} duplicates folded)"
    )
    for source, n in sorted(result.sources.items()):
        click.echo(f"  {n:>6}  {source}")
    click.echo(format_table([("held-out", result.metrics)]))
    click.echo(f"thresholds: {result.thresholds}")
    click.echo(
        "promoted" if promote else f"not promoted: commentmod models promote {result.version}"
    )


@main.command()
@click.option("--data", "data", multiple=True, type=click.Path(path_type=Path))
@click.option(
    "--protocol",
    type=click.Choice(["holdout", "lovo"]),
    default="holdout",
    show_default=True,
    help="lovo: leave one video (group) out",
)
@click.option(
    "--system",
    "systems",
    multiple=True,
    type=click.Choice(["commentmod", "bogofilter", "tfidf-lr"]),
    help="lovo: systems to compare (default: all three, same folds)",
)
@click.option(
    "--fixed-threshold",
    is_flag=True,
    help="lovo: commentmod at 0.5, not a threshold tuned inside the training folds",
)
@click.option("--json", "as_json", is_flag=True)
def evaluate(
    data: tuple[Path, ...],
    protocol: str,
    systems: tuple[str, ...],
    fixed_threshold: bool,
    as_json: bool,
) -> None:
    """Print the metrics table for a dataset and split."""
    from training.datasets import DatasetError, deduplicate, holdout_split, shipped_youtube
    from training.evaluate import SYSTEMS, format_report, format_table, lovo_report, metrics
    from training.train import fit_predict, load_examples

    try:
        examples = load_examples(list(data)) if data else shipped_youtube()
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    if protocol == "lovo":
        if len({e.group for e in examples}) < 2:
            raise click.ClickException("lovo needs data from at least two groups (videos)")
        report = lovo_report(
            examples, fit_predict, systems or SYSTEMS, tune_threshold=not fixed_threshold
        )
        if as_json:
            click.echo(json.dumps({s: dict(r) for s, r in report.items()}, indent=2))
        else:
            click.echo(format_report(report))
        return
    unique, _ = deduplicate(examples)
    train_set, test_set = holdout_split(unique)
    probs = fit_predict(train_set, test_set)
    rows = [("held-out", metrics([e.label for e in test_set], probs))]
    if as_json:
        click.echo(json.dumps({label: m for label, m in rows}, indent=2))
    else:
        click.echo(format_table(rows))


# --- models ------------------------------------------------------------------


@main.group()
def models() -> None:
    """List, promote and roll back model versions."""


@models.command("list")
@pass_ctx
def models_list(obj: Context) -> None:
    current = obj.registry.pointers()
    for meta in obj.registry.versions():
        mark = "*" if current.get(meta.get("family", "")) == meta["version"] else " "
        m = meta.get("evaluation", {}).get("metrics", {})
        click.echo(
            f"{mark} {meta['version']}  acc={m.get('accuracy', float('nan')):.4f} "
            f"mcc={m.get('mcc', float('nan')):.4f}  {meta.get('created_at', '')}"
        )


@models.command("promote")
@click.argument("version")
@pass_ctx
def models_promote(obj: Context, version: str) -> None:
    from service.model import load_scorer
    from service.toxicity import load_toxicity_scorer

    if obj.registry.metadata(version).get("family") == "toxicity":
        load_toxicity_scorer(obj.registry, version)
    else:
        load_scorer(obj.registry, version)  # refuse what the service would refuse
    obj.registry.set_current(version, action="promote")
    click.echo(f"current model is now {version}")


@models.command("rollback")
@click.option("--family", default="spam", show_default=True)
@pass_ctx
def models_rollback(obj: Context, family: str) -> None:
    version = obj.registry.rollback(family)
    click.echo(f"rolled back: current {family} model is now {version}")


# --- database and config -----------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(obj: Context) -> None:
    """Apply pending migrations (run before starting new code in production)."""
    from service import migrate

    obj.store  # noqa: B018 - opening the store migrates
    click.echo(f"schema at revision {migrate.current_revision(obj.store.engine)}")


@main.command("config")
@click.option("--all", "show_all", is_flag=True, help="list every setting with its doc")
@pass_ctx
def config_cmd(obj: Context, show_all: bool) -> None:
    """Print the effective settings (secrets masked)."""
    if show_all:
        for name, default, doc in describe():
            click.echo(f"{name:38} {default:22} {doc}")
        return
    click.echo(json.dumps(obj.settings.as_public_dict(), indent=2))


from service.moderation_cli import register as _moderation  # noqa: E402 - needs main

_moderation(main)
from service.toxicity_cli import coral, toxicity  # noqa: E402 - groups that live beside their feature

main.add_command(toxicity)
main.add_command(coral)
from service.rules_cli import rules  # noqa: E402 - groups that live beside their feature

main.add_command(rules)

if __name__ == "__main__":
    main()
