"""``commentmod rules``: manage the allow and block lists from the shell."""

from __future__ import annotations

import json

import click

from service.config import load_settings
from service.scoring.site_rules import add_rule, list_rules, remove_rule
from service.store.db import Store, site_key

# Not service.cli.main's Context: that module imports this one to register the group.


def open_store() -> Store:
    from service.cli.context import open_store as open_configured

    store: Store = open_configured(load_settings())
    return store

KIND_OPTIONS = ("email", "domain", "ip", "phrase")


@click.group()
def rules() -> None:
    """Per-site allow and block lists (author e-mail, domain, IP, phrase)."""


@rules.command("add")
@click.option("--site", help="site URL; default: all sites")
@click.option("--allow", "list_name", flag_value="allow", help="never spam when it matches")
@click.option("--block", "list_name", flag_value="block", help="always spam when it matches")
@click.option("--email")
@click.option("--domain")
@click.option("--ip", help="an address or a CIDR network")
@click.option("--phrase")
def rules_add(
    site: str | None,
    list_name: str | None,
    email: str | None,
    domain: str | None,
    ip: str | None,
    phrase: str | None,
) -> None:
    """Add one entry: exactly one of --allow/--block and one of --email/--domain/--ip/--phrase."""
    given = {k: v for k, v in zip(KIND_OPTIONS, (email, domain, ip, phrase), strict=True) if v}
    if list_name is None:
        raise click.UsageError("say --allow or --block")
    if len(given) != 1:
        raise click.UsageError("give exactly one of --email, --domain, --ip, --phrase")
    [(kind, value)] = given.items()
    rule = add_rule(open_store(), site, list_name, kind, value, actor="cli")
    where = site_key(site) if site else "all sites"
    click.echo(f"rule {rule['id']}: {list_name} {kind} {rule['value']!r} for {where}")


@rules.command("list")
@click.option("--site", help="this site's entries and the all-sites ones; default: every entry")
@click.option("--json", "as_json", is_flag=True)
def rules_list(site: str | None, as_json: bool) -> None:
    """List entries."""
    rows = list_rules(open_store(), site)
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    for r in rows:
        site = r["site"] or "*"
        click.echo(f"{r['id']:>5}  {r['list']:5}  {r['kind']:6}  {site:30}  {r['value']}")


@rules.command("remove")
@click.argument("rule_id", type=int)
def rules_remove(rule_id: int) -> None:
    """Remove the entry with this id (see `commentmod rules list`)."""
    remove_rule(open_store(), rule_id, actor="cli")
    click.echo(f"removed rule {rule_id}")
