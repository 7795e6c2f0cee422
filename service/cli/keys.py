"""``commentmod keys``: issue, list and revoke site API keys.

A key is shown once, when it is created; only its sha256 and last four
characters are stored.
"""

from __future__ import annotations

import json

import click

from service.cli.context import open_store
from service.config import load_settings
from service.store.db import Store


def _store() -> Store:
    """The configured database, migrated; opened once per invocation, when first needed."""
    ctx = click.get_current_context()
    store: Store | None = ctx.meta.get("commentmod.keys.store")
    if store is None:
        store = open_store(load_settings())
        ctx.meta["commentmod.keys.store"] = store
        ctx.call_on_close(store.engine.dispose)
    return store


@click.group()
def keys() -> None:
    """Site API keys (Akismet and JSON API)."""


@keys.command("create")
@click.option("--site", "site", required=True, help="the site's URL, e.g. https://news.example")
def keys_create(site: str) -> None:
    """Print a new 12-character key bound to SITE (the only time it is shown)."""
    key, site_id = _store().create_key(site)
    click.echo(key)
    click.echo(f"key for site {_store().site(site_id)['url']} (site id {site_id})", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="print a machine-readable list")
def keys_list(as_json: bool) -> None:
    """Every key: id, last four characters, site, created, revoked."""
    rows = _store().keys()
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    if not rows:
        click.echo("no keys yet: commentmod keys create --site URL", err=True)
        return
    click.echo(f"{'id':>5}  {'key':12}  {'status':8}  {'created':19}  site")
    for r in rows:
        status = "revoked" if r["revoked_at"] else "live"
        created = r["created_at"].strftime("%Y-%m-%d %H:%M:%S")
        hint = "." * 8 + r["key_hint"]
        click.echo(f"{r['id']:>5}  {hint:12}  {status:8}  {created:19}  {r['site']}")


@keys.command("revoke")
@click.argument("key_or_id")
def keys_revoke(key_or_id: str) -> None:
    """Revoke a key, given the key itself or its id from ``keys list``."""
    key_id = _store().revoke_key(key_or_id.strip())
    click.echo(f"revoked key {key_id}")
