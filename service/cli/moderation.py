"""``commentmod moderators``, ``labels`` and ``privacy``: accounts, training labels, retention."""

from __future__ import annotations

import getpass
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from service.cli.context import Context
from service.errors import ValidationError
from service.moderation import moderators as mods
from service.store import labels as label_io
from service.store import retention


def _obj() -> Any:
    """The CLI's shared Context (settings and a migrated store)."""
    return click.get_current_context().ensure_object(Context)


def _hasher() -> Any:
    return mods.hasher_for(_obj().settings.password_hash_cost)


def _password(prompt: str, from_stdin: bool) -> str:
    """The first line of stdin, or a hidden prompt with confirmation.

    Without a terminal, getpass warns that it cannot hide the input and a closed
    stdin ends the prompt with click's bare "Aborted!": say what to do instead."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", getpass.GetPassWarning)
            return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))
    except click.Abort:
        if sys.stdin.isatty():
            raise
        raise ValidationError(
            "no password given and no terminal to ask for it on: pipe it in with "
            "--password-stdin", field="password",
        ) from None


@click.group()
def moderators() -> None:
    """Moderator accounts for the web queue and the moderation API."""


@moderators.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="sees every site")
@click.option("--site", "sites", multiple=True, help="site URL this moderator handles (repeat)")
@click.option("--password-stdin", is_flag=True, help="read the password from the first stdin line")
def moderators_create(name: str, admin: bool, sites: tuple[str, ...], password_stdin: bool) -> None:
    """Create an account for --site URL (repeat) or --admin; the password is prompted for."""
    mods.check_name(name)
    if not admin and not sites:
        raise ValidationError(
            f"moderator {name!r} would see nothing: give --site URL (repeat for more) or --admin",
            field="site",
        )
    for site in sites:  # before the password prompt, not after it
        _obj().store.site_id(site)
    password = _password("Password", password_stdin)
    mod = mods.create(_obj().store, name, password, admin=admin, sites=sites, hasher=_hasher())
    scope = "all sites (admin)" if mod.is_admin else f"{len(mod.site_ids)} site(s)"
    click.echo(f"created moderator {mod.name}: {scope}")


@moderators.command("list")
@click.option("--json", "as_json", is_flag=True)
def moderators_list(as_json: bool) -> None:
    """Every account: name, active or disabled, the sites it moderates (or admin)."""
    rows = mods.list_all(_obj().store)
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    for r in rows:
        state = "disabled" if r["disabled_at"] else "active"
        scope = "admin: all sites" if r["is_admin"] else ", ".join(r["sites"]) or "(no sites)"
        click.echo(f"{r['name']:<24} {state:<9} {scope}")


@moderators.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from the first stdin line")
def moderators_password(name: str, password_stdin: bool) -> None:
    """Set a new password; every open session of the account ends."""
    mods.check_name(name)
    password = _password("New password", password_stdin)
    mods.set_password(_obj().store, name, password, hasher=_hasher())
    click.echo(f"new password for moderator {name}; their open sessions have ended")


@moderators.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="re-enable instead")
def moderators_disable(name: str, enable: bool) -> None:
    """Disable an account; its open sessions stop working at the next request."""
    mods.set_disabled(_obj().store, name, not enable)
    click.echo(f"{'enabled' if enable else 'disabled'} moderator {name}")


@moderators.command("assign")
@click.argument("name")
@click.option("--site", "add", multiple=True, help="site URL to add (repeat)")
@click.option("--remove", multiple=True, help="site URL to remove (repeat)")
@click.option("--admin/--no-admin", default=None, help="grant or revoke the admin flag")
def moderators_assign(
    name: str, add: tuple[str, ...], remove: tuple[str, ...], admin: bool | None
) -> None:
    """Add or remove the sites an account moderates, or grant or revoke admin."""
    mod = mods.assign(_obj().store, name, add=add, remove=remove, admin=admin)
    scope = "all sites (admin)" if mod.is_admin else f"{len(mod.site_ids)} site(s)"
    click.echo(f"moderator {mod.name}: {scope}")


@click.group()
def labels() -> None:
    """Import and export training labels (CSV or JSONL)."""


@labels.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(label_io.FORMATS), help="default: by suffix")
@click.option("--actor", default="import", show_default=True, help="actor for rows without one")
def labels_import(file: Path, fmt: str | None, actor: str) -> None:
    """Import labels by guid or by content; re-importing the same file adds nothing."""
    fmt = label_io.detect_format(file, fmt)
    settings = _obj().settings
    with file.open(encoding="utf-8-sig", newline="") as stream:
        rows = label_io.parse_file(
            stream, fmt, default_actor=actor[:200], max_content=settings.max_content_chars
        )
    result = label_io.import_rows(_obj().store, rows, actor="cli", name=file.name)
    click.echo(
        f"{len(rows)} rows: {result.added} labels added, {result.duplicates} already present, "
        f"{result.comments_created} comments created, {result.forgotten} skipped (forgotten)"
    )


@labels.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(label_io.FORMATS), default="jsonl", show_default=True
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="default: stdout"
)
@click.option("--history", is_flag=True, help="every label, not only the newest per comment")
@click.option("--include-test", is_flag=True, help="include is_test traffic")
def labels_export(fmt: str, output: Path | None, history: bool, include_test: bool) -> None:
    """Write the stored labels with their comments (personal data: the export is audited)."""
    store = _obj().store
    rows = label_io.export_rows(store, history=history, include_test=include_test)
    # An export carries personal data out of the database: record who took what.
    store.audit("cli", "labels.export", str(output or "stdout"), {"rows": len(rows), "format": fmt})
    if output is None:
        label_io.write_export(rows, sys.stdout, fmt)
        return
    tmp = output.with_name(output.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        label_io.write_export(rows, out, fmt)
    tmp.replace(output)  # a half-written export never takes the file's name
    click.echo(f"exported {len(rows)} labels to {output}", err=True)


@click.group()
def privacy() -> None:
    """Retention and the right to be forgotten."""


@privacy.command("purge")
@click.option("--days", type=click.IntRange(min=1), help="default: COMMENTMOD_RETENTION_DAYS")
@click.option("--dry-run", is_flag=True, help="count only")
def privacy_purge(days: int | None, dry_run: bool) -> None:
    """Empty the text of unlabelled comments older than the retention age."""
    days = days or _obj().settings.retention_days
    result = retention.purge(_obj().store, days, dry_run=dry_run)
    verb = "would purge" if dry_run else "purged"
    click.echo(
        f"{verb} {result.purged} unlabelled comments received before "
        f"{result.cutoff:%Y-%m-%d %H:%M} UTC"
    )


@privacy.command("forget")
@click.option("--email", default="", help="commenter's email address")
@click.option("--ip", default="", help="commenter's IP address")
def privacy_forget(email: str, ip: str) -> None:
    """Delete a commenter's comments and labels and keep them out of later training."""
    if not email and not ip:
        raise click.UsageError("give --email or --ip")
    result = retention.forget(_obj().store, email=email, ip=ip)
    click.echo(
        f"deleted {result.comments} comments and {result.labels} labels; "
        "the commenter is excluded from later training and imports"
    )


def register(main: click.Group) -> None:
    for group in (moderators, labels, privacy):
        main.add_command(group)
