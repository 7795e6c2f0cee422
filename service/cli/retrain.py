"""CLI commands of the retraining loop, added to ``commentmod`` by service/cli/main.py.

- ``models diff CANDIDATE``: what would change if CANDIDATE served;
- ``models shadow VERSION | --off`` and ``models shadow-report [VERSION]``;
- ``sites thresholds URL --spam 0.8 ...``: per-site thresholds.

Every pointer change (promote, rollback, forced promotion, shadow) is written
to the audit log and announced on Redis when it is configured.
"""

from __future__ import annotations

import json
from typing import Any

import click

from service.registry import notify as model_notify
from service.store.site_settings import THRESHOLD_NAMES, merged_thresholds, validate_thresholds


def announce(obj: Any, action: str, version: str, *, family: str = "spam",
             detail: dict[str, Any] | None = None) -> None:
    """Audit a pointer change and wake every worker that listens on Redis."""
    obj.store.audit("cli", f"model.{action}", version, {"family": family, **(detail or {})})
    settings = obj.settings
    if settings.redis_url and settings.notify_models:
        model_notify.publish(settings.redis_url, family)


def register(main: click.Group, models: click.Group, pass_ctx: Any) -> None:
    """Attach the commands to the CLI groups defined in service/cli/main.py."""

    @models.command("diff")
    @click.argument("candidate")
    @click.option("--examples", default=10, show_default=True, type=click.IntRange(0, 1000))
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def models_diff(obj: Any, candidate: str, examples: int, as_json: bool) -> None:
        """Re-score stored labelled comments with the serving model and CANDIDATE."""
        from service.scoring.model import load_scorer
        from training.gate import diff_models
        from training.labels import read_labels

        serving = obj.registry.current("spam")
        if serving is None:
            raise click.ClickException("no serving model to compare with")
        result = diff_models(
            read_labels(obj.store),
            load_scorer(obj.registry, serving),
            load_scorer(obj.registry, candidate),
            examples,
        )
        if as_json:
            click.echo(json.dumps(result, indent=2))
            return
        click.echo(f"serving {result['serving']}  ->  candidate {result['candidate']}")
        click.echo(f"{result['n']} labelled comments, {result['flips']} verdicts would flip")
        for kind, n in result["by_kind"].items():
            click.echo(f"  {n:>6}  {kind}")
        right = result["matching_label"]
        click.echo(f"verdict equals label: serving {right['serving']}, "
                   f"candidate {right['candidate']}")
        for ex in result["examples"]:
            click.echo(f"  #{ex['comment_id']} label={ex['label']} {ex['serving']} -> "
                       f"{ex['candidate']}: {ex['content'][:100]!r}")

    @models.command("shadow")
    @click.argument("version", required=False)
    @click.option("--off", is_flag=True, help="stop shadowing")
    @pass_ctx
    def models_shadow(obj: Any, version: str | None, off: bool) -> None:
        """Let VERSION score live traffic beside the serving model (answers unchanged)."""
        from service.scoring.model import load_scorer
        from service.scoring.shadow import set_shadow

        if off == bool(version):
            raise click.UsageError("give a VERSION or --off")
        if version:
            load_scorer(obj.registry, version)  # refuse what the workers would refuse
        set_shadow(obj.store, version)
        announce(obj, "shadow", version or "off")
        click.echo(f"shadow model: {version or 'off'}")

    @models.command("shadow-report")
    @click.argument("version", required=False)
    @click.option("--examples", default=10, show_default=True, type=click.IntRange(0, 1000))
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def models_shadow_report(obj: Any, version: str | None, examples: int, as_json: bool) -> None:
        """Agreement of a shadow candidate (default: the current one) with the serving model."""
        from service.scoring.shadow import shadow_report, shadow_version

        version = version or shadow_version(obj.store)
        if not version:
            raise click.ClickException("no shadow model; name a VERSION")
        report = shadow_report(obj.store, version, examples)
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        click.echo(f"candidate {version}: {report['n']} comments shadowed, "
                   f"agreement {report['agreement']:.2%}, "
                   f"mean |difference| {report['mean_abs_difference']:.4f}")
        for pair, n in report["pairs"].items():
            click.echo(f"  {n:>6}  serving->candidate {pair}")
        for d in report["disagreements"]:
            click.echo(f"  #{d['comment_id']} {d['serving']} -> {d['candidate']}: "
                       f"{d['content'][:100]!r}")

    @main.command("refresh")
    @click.option("--loop", is_flag=True, help="keep checking (what serve starts when "
                  "COMMENTMOD_AUTO_REFRESH is on)")
    @click.option("--force", "force_run", is_flag=True, help="retrain even if not due")
    @click.option("--json", "as_json", is_flag=True)
    @pass_ctx
    def refresh_cmd(obj: Any, loop: bool, force_run: bool, as_json: bool) -> None:
        """Retrain, gate and promote if sites gave enough new labels (see
        COMMENTMOD_REFRESH_LABELS and COMMENTMOD_REFRESH_MINUTES)."""
        import time

        from training.refresh import refresh

        s = obj.settings
        while True:
            try:
                out = refresh(obj.store, obj.registry, min_labels=s.refresh_labels,
                              max_minutes=s.refresh_minutes, force=force_run)
            except Exception as exc:  # the loop outlives one failed refresh
                if not loop:
                    raise
                click.echo(f"refresh failed: {exc}", err=True)
                out = {"ran": False}
            if out.get("promoted"):
                announce(obj, "promote", out["version"], detail={"refresh": out["why"]})
            if as_json:
                click.echo(json.dumps(out, default=str))
            elif out.get("ran"):
                verdict = out["gate"]["verdict"]
                click.echo(f"refresh: {out['why']}: {out['version']} "
                           f"{'promoted' if out['promoted'] else 'refused'} ({verdict})")
            elif not loop:
                click.echo(f"refresh: {out['why']}")
            if not loop:
                return
            time.sleep(s.refresh_check_seconds)

    @main.group()
    def sites() -> None:
        """Per-site settings."""

    @sites.command("thresholds")
    @click.argument("url")
    @click.option("--unsure", type=float)
    @click.option("--spam", type=float)
    @click.option("--discard", type=float)
    @click.option("--reset", is_flag=True, help="use the model's thresholds again")
    @pass_ctx
    def sites_thresholds(obj: Any, url: str, reset: bool, **given: float | None) -> None:
        """Show or set the unsure/spam/discard thresholds of the site at URL."""
        site = obj.store.site(obj.store.site_id(url))
        wanted = site["url"]
        current = dict((site["settings"] or {}).get("thresholds") or {})
        changes = validate_thresholds({k: v for k, v in given.items() if v is not None})
        if reset or changes:
            new = {} if reset else {**current, **changes}
            version = obj.registry.current("spam")
            if version and new:
                merged_thresholds(obj.registry.metadata(version)["thresholds"], new)
            obj.store.update_site_settings(site["id"], {"thresholds": new or None})
            obj.store.audit("cli", "site.thresholds", wanted, {"thresholds": new})
            current = new
        shown = {k: current.get(k, "(model)") for k in THRESHOLD_NAMES}
        click.echo(f"{wanted}: {json.dumps(shown)}")
