"""``commentmod toxicity train|evaluate`` and ``commentmod coral ...``.

Training code is imported inside the commands, so the web workers never load it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from service.cli.context import Context, pass_ctx


def _data_dir(given: Path | None) -> Path:
    """--data, else the corpora that ship in training/data/toxicity."""
    from training.toxicity import default_data_dir

    found = given or default_data_dir()
    if not found.is_dir():
        raise click.ClickException(f"no toxicity corpora directory at {found}")
    return found


@click.group()
def toxicity() -> None:
    """Train and evaluate the toxicity model family (Perspective-compatible)."""


@toxicity.command("train")
@click.option("--data", "data", type=click.Path(path_type=Path),
              help="toxicity corpora dir (default: the shipped training/data/toxicity)")
@click.option("--with-labels", is_flag=True, help="add toxicity labels from the database")
@click.option("--promote", is_flag=True, help="make the new model current if it passes the gate")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def train(obj: Context, data: Path | None, with_labels: bool, promote: bool, as_json: bool) -> None:
    """Train a toxicity model (about 2 CPU-minutes on the full corpora)."""
    from training.toxicity import format_evaluation, gate, labelled_rows, train_toxicity

    extra = labelled_rows(obj.store) if with_labels else []
    result = train_toxicity(obj.registry, _data_dir(data), extra=extra)
    refusal = gate(result)
    if promote and refusal is None:
        obj.registry.set_current(result.version, action="promote")
        result.promoted = True
    if as_json:
        click.echo(json.dumps({
            "version": result.version, "examples": result.n_train, "sources": result.sources,
            "validation": result.metrics, "held_out": result.evaluation,
            "promoted": result.promoted, "gate": refusal,
        }, indent=2))
        return
    click.echo(f"trained {result.version} on {result.n_train} examples")
    for source, n in sorted(result.sources.items()):
        click.echo(f"  {n:>6}  {source}")
    for attr, m in result.metrics.items():
        click.echo(f"  validation {attr:16} n={m['n']:>5} ROC AUC {m['roc_auc']:.4f}")
    click.echo(format_evaluation(result.evaluation))
    if promote and refusal:
        raise click.ClickException(f"not promoted: {refusal}")
    click.echo("promoted" if promote else
               f"not promoted: commentmod models promote {result.version}")


@toxicity.command("bootstrap", hidden=True)
@click.option("--detach", is_flag=True, help="fork and return at once (what serve does)")
@pass_ctx
def bootstrap(obj: Context, detach: bool) -> None:
    """Train and promote the first toxicity model, if there is none, from the shipped
    corpora. ``serve`` runs this detached so that the spam API answers meanwhile;
    the status file in data_dir tells the Perspective endpoint to ask for a retry."""
    if detach and os.fork() > 0:
        os._exit(0)  # the parent returns to serve; the child is not gunicorn's to reap
    from service.cli.retrain import announce
    from service.scoring.toxicity import BOOTSTRAP_STATUS, write_bootstrap_status
    from training.toxicity import default_data_dir, gate, train_toxicity

    data_dir = obj.settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "toxicity-bootstrap.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            click.echo("another toxicity bootstrap is running", err=True)
            return
        if obj.registry.current("toxicity") is not None:
            click.echo("a toxicity model is already current: nothing to do", err=True)
            return
        with contextlib.suppress(OSError):
            os.nice(10)  # the web workers come first
        started = time.time()
        write_bootstrap_status(data_dir, "training", started_at=started)
        click.echo(f"training the first toxicity model (pid {os.getpid()})...", err=True)
        try:
            result = train_toxicity(obj.registry, default_data_dir())
            refusal = gate(result)
            if refusal is not None:
                raise click.ClickException(f"{result.version} not promoted: {refusal}")
            obj.registry.set_current(result.version, action="promote")
            announce(obj, "promote", result.version, family="toxicity")
        except Exception as exc:
            message = exc.message if isinstance(exc, click.ClickException) else repr(exc)
            write_bootstrap_status(data_dir, "failed", error=message)
            click.echo(f"error: toxicity bootstrap failed: {message}", err=True)
            raise SystemExit(1) from exc
        (data_dir / BOOTSTRAP_STATUS).unlink(missing_ok=True)
        click.echo(f"toxicity model {result.version} promoted after "
                   f"{time.time() - started:.0f} s", err=True)


@toxicity.command("evaluate")
@click.option("--data", "data", type=click.Path(path_type=Path))
@click.option("--version", "version", help="default: the current toxicity model")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def evaluate_cmd(obj: Context, data: Path | None, version: str | None, as_json: bool) -> None:
    """Print the held-out evaluation of a saved toxicity model."""
    from training.toxicity import evaluate, format_evaluation

    name = version or obj.registry.current("toxicity")
    if name is None:
        raise click.ClickException("no toxicity model: commentmod toxicity train --promote")
    model = obj.registry.load(name)
    result = evaluate(model.pipeline, _data_dir(data), float(model.metadata["span_threshold"]))
    click.echo(json.dumps(result, indent=2) if as_json else format_evaluation(result))


@click.group()
def coral() -> None:
    """Coral Talk external moderation: signing secrets and per-tenant policy."""


@coral.command("add-secret")
@click.option("--site", required=True, help="the site URL the tenant's comments belong to")
@click.option("--tenant", required=True, help="Coral tenant id")
@click.option("--secret", help="the phase's signing secret from Coral (default: generate one)")
@pass_ctx
def add_secret(obj: Context, site: str, tenant: str, secret: str | None) -> None:
    from service.api.coral import add_secret as add

    value = add(obj.store, site, tenant, secret)
    click.echo(value if not secret else f"secret …{value[-4:]} added for tenant {tenant}")


@coral.command("rotate")
@click.option("--tenant", required=True)
@click.option("--secret", help="the new signing secret (default: generate one)")
@click.option("--grace-hours", default=24.0, show_default=True, type=click.FloatRange(0, 24 * 30),
              help="how long the previous secrets stay valid")
@pass_ctx
def rotate(obj: Context, tenant: str, secret: str | None, grace_hours: float) -> None:
    from service.api.coral import rotate_secret

    value = rotate_secret(obj.store, tenant, secret, timedelta(hours=grace_hours))
    click.echo(value if not secret else f"secret …{value[-4:]} is now current for {tenant}")
    click.echo(f"previous secrets expire in {grace_hours:g} h", err=True)


@coral.command("list")
@pass_ctx
def list_cmd(obj: Context) -> None:
    from service.api.coral import tenant_secrets
    from service.store.db import now

    at = now()
    for s in tenant_secrets(obj.store):
        state = "active" if s.active(at) else "expired"
        until = f" until {s.expires_at:%Y-%m-%d %H:%M}" if s.expires_at and s.active(at) else ""
        site = obj.store.site(s.site_id)["url"]
        click.echo(f"{s.tenant_id:24} {site:30} {s.hint()}  {state}{until}  "
                   f"policy={json.dumps(s.policy, sort_keys=True)}")


@coral.command("policy")
@click.option("--tenant", required=True)
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="spam_status, unsure_status, toxic_status, toxic_threshold (VALUE 'default' "
                   "removes the key)")
@pass_ctx
def policy(obj: Context, tenant: str, assignments: tuple[str, ...]) -> None:
    from service.api.coral import DEFAULT_POLICY, set_policy, tenant_secrets

    changes: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        changes[key] = None if value == "default" else _policy_value(key, value)
    if changes:
        merged = set_policy(obj.store, tenant, changes)
    else:
        rows = tenant_secrets(obj.store, tenant)
        if not rows:
            raise click.ClickException(f"no Coral tenant {tenant!r}")
        merged = rows[-1].policy
    click.echo(json.dumps({**DEFAULT_POLICY, **merged}, indent=2, sort_keys=True))


def _policy_value(key: str, value: str) -> Any:
    if key == "toxic_threshold":
        try:
            return float(value)
        except ValueError as exc:
            raise click.BadParameter(f"{value!r} is not a number", param_hint="--set") from exc
    return value.upper()
