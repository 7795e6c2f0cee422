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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from service.cli.context import Context, pass_ctx
from service.cli.keys import keys
from service.config import describe
from service.errors import CommentmodError, ModelError


class Group(click.Group):
    """Turns domain errors into one clear line on stderr and exit status 2, and a
    command's own refusal (``click.ClickException``, not a usage error, which
    keeps click's usage text) into the same kind of line with its exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommentmodError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)
        except click.UsageError:
            raise
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)


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
        "no model yet: training the bootstrap model from the shipped data (YouTube "
        "Spam Collection, CC BY 4.0, and discussion comments as ham)...",
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


def compile_current(obj: Context) -> None:
    """Compile the current models saved before their compiled files existed, here in
    the process gunicorn replaces: scikit-learn then never enters the master, whose
    memory every worker inherits (docs/performance.md, "Every model shared")."""
    for family in ("spam", "toxicity"):
        version = obj.registry.current(family)
        if version is None or obj.registry.compiled(version):
            continue
        try:
            done = obj.registry.compile(version)
        except ModelError as exc:  # the workers refuse it the same way and say so
            click.echo(f"warning: cannot compile {version}: {exc}", err=True)
            continue
        if done:
            click.echo(f"compiled {version} for serving without scikit-learn", err=True)


def start_toxicity_bootstrap(obj: Context) -> None:
    """Train the first toxicity model in a detached process (about a CPU-minute, more
    wall time), so that gunicorn serves the spam API meanwhile; the Perspective
    endpoint answers 503 with Retry-After until the model is promoted."""
    import subprocess

    data_dir = obj.settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "toxicity-bootstrap.log"
    code = f"import sys; from {main.callback.__module__} import main; sys.exit(main())"
    with log_path.open("ab") as log:
        subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-c", code, "toxicity", "bootstrap", "--detach"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False,
            timeout=60,
        )
    click.echo(f"no toxicity model yet: training one in the background (a few minutes; log: "
               f"{log_path}); the spam API answers meanwhile, the Perspective endpoint "
               "answers 503 with Retry-After until it is ready", err=True)


DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def bind_address(host: str | None, port: int | None, environ: Mapping[str, str]) -> str:
    """Where ``serve`` listens: ``--host``/``--port`` when either is given (the other
    at its default), else ``COMMENTMOD_BIND`` (gunicorn's bind, documented in
    docs/configuration.md), else 127.0.0.1:8000. An operator who set only the
    variable got port 8000, the option's default, without a word."""
    if host is None and port is None and environ.get("COMMENTMOD_BIND", "").strip():
        return environ["COMMENTMOD_BIND"].strip()
    host = host or DEFAULT_HOST
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address, as gunicorn reads a bind
    return f"{host}:{port or DEFAULT_PORT}"


@main.command()
@click.option("--host", help=f"default: {DEFAULT_HOST}, or the host of COMMENTMOD_BIND")
@click.option("--port", type=click.IntRange(1, 65535),
              help=f"default: {DEFAULT_PORT}, or the port of COMMENTMOD_BIND")
@click.option("--workers", type=click.IntRange(1, 64), help="default: 2 per core")
@click.option("--no-bootstrap", is_flag=True,
              help="fail instead of training a first spam model; train no toxicity model")
@pass_ctx
def serve(
    obj: Context, host: str | None, port: int | None, workers: int | None, no_bootstrap: bool
) -> None:
    """Run the service under gunicorn (service/gunicorn_conf.py)."""
    obj.store  # noqa: B018 - migrates the schema before the workers start
    if no_bootstrap and obj.registry.current("spam") is None:
        raise click.ClickException("no current model and --no-bootstrap given")
    version = ensure_model(obj)
    compile_current(obj)
    if obj.registry.current("toxicity") is None:
        if no_bootstrap or not obj.settings.toxicity_bootstrap:
            click.echo("no toxicity model: the Perspective endpoint answers 503 and Coral "
                       "scores spam only until `commentmod toxicity train --promote`", err=True)
        else:
            start_toxicity_bootstrap(obj)
    prom_dir = obj.settings.data_dir.resolve() / "prometheus"
    shutil.rmtree(prom_dir, ignore_errors=True)
    prom_dir.mkdir(parents=True)
    bind = bind_address(host, port, os.environ)
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
        "COMMENTMOD_BIND": bind,
    }
    if workers:
        env["COMMENTMOD_WORKERS"] = str(workers)
    conf = Path(__file__).parent.parent / "gunicorn_conf.py"
    where = bind if bind.startswith(("unix:", "fd://")) else f"http://{bind}"
    click.echo(f"serving model {version} on {where}", err=True)
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
@click.option("--no-labels", is_flag=True, help="ignore the labels stored in the database")
@click.option("--no-base", is_flag=True, help="without --data, do not add the shipped set")
@click.option(
    "--out-of-core/--in-memory",
    "out_of_core",
    default=None,
    help="hashing + partial_fit in chunks (default: chosen by the number of examples)",
)
@click.option("--holdout", default=0.2, show_default=True, type=click.FloatRange(0.05, 0.5),
              help="share of each site's newest labels held out for the gate")
@click.option("--promote", is_flag=True, help="make the new model current if it passes the gate")
@click.option("--force", is_flag=True, help="with --promote: promote even if the gate fails")
@click.option("--workers", type=click.IntRange(0), default=None,
              help="out of core: processes that read the comments while the model is fitted "
              "(default: one per CPU; 0: all in this process)")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--json", "as_json", is_flag=True, help="print a machine-readable summary")
@pass_ctx
def train(
    obj: Context,
    data: tuple[Path, ...],
    no_labels: bool,
    no_base: bool,
    out_of_core: bool | None,
    holdout: float,
    promote: bool,
    force: bool,
    workers: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Train a candidate from stored labels plus --data files, gate it, maybe promote it.

    Without --data the shipped base set (YouTube and SMS spam collections,
    discussion comments as ham) is added. The gate scores
    the candidate and the serving model on the same held-out labels; the HTML
    report is written next to the model (GET /models/VERSION/report).
    """
    from service.cli.retrain import announce
    from training.datasets import DatasetError
    from training.evaluate import format_table
    from training.parallel import default_workers
    from training.retrain import TrainingDataError, retrain

    if force and not promote:
        raise click.UsageError("--force only makes sense with --promote")
    try:
        result = retrain(
            None if no_labels else obj.store, obj.registry, list(data), base=not no_base,
            out_of_core=out_of_core, fraction=holdout, progress=not (quiet or as_json),
            workers=default_workers() if workers is None else workers,
        )
    except (DatasetError, TrainingDataError) as exc:
        raise click.ClickException(str(exc)) from exc
    gate = result.gate
    if promote and (gate.passed or force):
        from service.registry.versions import refused_by_gate

        action = "promote" if gate.passed else "force"
        detail = refused_by_gate({"gate": gate.to_dict()})
        obj.registry.set_current(result.version, action=action, detail=detail)
        announce(obj, action, result.version, detail=detail or {"gate_passed": True})
        result.promoted = True
    if as_json:
        click.echo(json.dumps({**result.summary, "version": result.version,
                               "metrics": gate.candidate.get("overall", {}),
                               "gate": gate.to_dict(),
                               "promoted": result.promoted, "report": str(result.report)},
                              indent=2, default=str))
        if promote and not result.promoted:
            sys.exit(3)
        return
    s = result.summary
    click.echo(f"trained {result.version} ({s['trainer']}) {training_counts(s)}")
    for source, n in sorted(s["sources"].items()):
        click.echo(f"  {n:>7}  {source}")
    rows = [(f"candidate {k}", m) for k, m in gate.candidate.items()]
    rows += [(f"serving {k}", m) for k, m in (gate.serving or {}).items()]
    click.echo(format_table(rows))
    click.echo(f"thresholds: {s['thresholds']}")
    click.echo(f"gate {'passed' if gate.passed else 'FAILED'} against {gate.serving_version}:")
    for reason in gate.reasons:
        click.echo(f"  {reason}")
    click.echo(f"report: {result.report}")
    if result.promoted:
        click.echo("promoted" + (" (forced past a failed gate; logged)" if not gate.passed else ""))
    elif promote:
        click.echo("NOT promoted: the gate failed (use --force to override; it is logged)")
        sys.exit(3)
    else:
        click.echo(f"not promoted: commentmod models diff {result.version}; "
                   f"commentmod models promote {result.version}")


@main.command()
@click.option("--data", "data", multiple=True, type=click.Path(path_type=Path))
@click.option(
    "--protocol",
    type=click.Choice(["holdout", "lovo", "loco", "per-corpus", "dayone"]),
    default="holdout",
    show_default=True,
    help="lovo: leave one video (group) out; loco: leave one corpus out over the shipped "
    "corpora and the measurement-only ones; per-corpus: retrain on each corpus's own 80 %; "
    "dayone: trained on the shipped data, scored on each measurement-only corpus and on "
    "690 shipped news comments no spam model trains on (ham: its false positives)",
)
@click.option(
    "--system",
    "systems",
    multiple=True,
    type=click.Choice(["commentmod", "bogofilter", "tfidf-lr"]),
    help="systems to compare (default: all three, on the same split or folds)",
)
@click.option(
    "--fixed-threshold",
    is_flag=True,
    help="lovo: commentmod at 0.5, not a threshold tuned inside the training folds",
)
@click.option(
    "--eval-only-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="loco/per-corpus/dayone: where the measurement-only corpora are "
    "(default: <repo>/../shared/data/eval-only; read, never copied)",
)
@click.option("--cap", type=click.IntRange(min=100), default=None,
              help="loco/per-corpus: at most this many training examples per corpus")
@click.option("--folds", type=click.IntRange(min=1), default=1, show_default=True,
              help="per-corpus: score every text once, k-fold (1: one 80/20 split)")
@click.option("--corpus", "only", multiple=True, help="loco: hold out only these corpora")
@click.option("--json", "as_json", is_flag=True)
def evaluate(
    data: tuple[Path, ...],
    protocol: str,
    systems: tuple[str, ...],
    fixed_threshold: bool,
    eval_only_dir: Path | None,
    cap: int | None,
    folds: int,
    only: tuple[str, ...],
    as_json: bool,
) -> None:
    """Print the metrics table for a dataset and split."""
    from training.baselines import BaselineError
    from training.datasets import DatasetError, deduplicate, holdout_split, shipped_youtube
    from training.evaluate import SYSTEMS, compare, format_report, format_table, lovo_report
    from training.train import fit_predict, load_examples

    if protocol in {"loco", "per-corpus", "dayone"}:
        _evaluate_corpora(protocol, systems or SYSTEMS, eval_only_dir, cap, only, as_json, folds)
        return
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
    try:
        results = compare(train_set, test_set, fit_predict, systems or SYSTEMS)
    except BaselineError as exc:
        raise click.ClickException(f"{exc}; or leave it out with --system") from exc
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        click.echo(f"held-out split: trained on {len(train_set)}, tested on {len(test_set)}")
        click.echo(format_table(list(results.items())))


def _evaluate_corpora(
    protocol: str,
    systems: Sequence[str],
    eval_only_dir: Path | None,
    cap: int | None,
    only: Sequence[str],
    as_json: bool,
    folds: int = 1,
) -> None:
    """The new-site protocols: every labelled corpus, the product's own training code."""
    from training.datasets import (
        EVAL_ONLY,
        DatasetError,
        eval_only_corpora,
        news_comments,
        shipped_base,
        shipped_corpora,
    )
    from training.evaluate import (
        dayone_report,
        format_corpus_report,
        loco_report,
        per_corpus_report,
    )

    root = eval_only_dir or EVAL_ONLY
    try:
        measured = eval_only_corpora(root)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    names = [n for n, _ in [*shipped_corpora(), *measured]] + ["youtube"]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise click.ClickException(f"no corpus {', '.join(unknown)}; known: {', '.join(names)}")
    click.echo(f"measurement-only corpora read from {root} (never shipped): "
               f"{', '.join(n for n, _ in measured)}", err=True)
    log = None if as_json else (lambda line: click.echo(line, err=True))
    if protocol == "loco":
        report = loco_report([*shipped_corpora(), *measured], systems, cap, only, log)
    elif protocol == "per-corpus":
        youtube = [e for n, ex in shipped_corpora() if n.startswith("youtube") for e in ex]
        sms = dict(shipped_corpora())["sms"]
        corpora = [("youtube", youtube), ("sms", sms), *measured]
        if only:
            corpora = [(n, ex) for n, ex in corpora if n in only]
        report = per_corpus_report(corpora, systems, cap, log, folds)
    else:
        report = dayone_report(shipped_base(), [*measured, ("news-comments", news_comments())],
                               systems)
    if as_json:
        click.echo(json.dumps({s: dict(r) for s, r in report.items()}, indent=2))
    else:
        click.echo(format_corpus_report(report))


# --- models ------------------------------------------------------------------


@main.group()
def models() -> None:
    """List, promote and roll back model versions."""


@models.command("list")
@pass_ctx
def models_list(obj: Context) -> None:
    """Every saved version with its held-out figures; * marks each family's current one."""
    current = obj.registry.pointers()
    for meta in obj.registry.versions():
        mark = "*" if current.get(meta.get("family", "")) == meta["version"] else " "
        figures = model_figures(meta.get("evaluation", {}).get("metrics", {}))
        kind = model_kind(meta.get("params"))
        click.echo(f"{mark} {meta['version']}  {figures}  {kind + '  ' if kind else ''}"
                   f"{meta.get('created_at', '')}")


def training_counts(s: dict[str, Any]) -> str:
    """How many examples a trainer's summary says went where, in words that add up:
    in memory, the gate's candidate is fit on ``train`` and scored on ``test`` (the
    sites' newest labels plus the files' gate fold); the saved model is then fit on
    ``examples``, the training side and those labels, never the gate fold."""
    folded = f"{s['folded_duplicates']} duplicates folded"
    fold = s.get("gate_fold")
    if s.get("trainer") != "in-memory" or not isinstance(fold, int):
        return (f"on {s['examples']} distinct examples ({folded}): fit on {s['train']}, "
                f"held out {s['test']} for the gate and thresholds")
    labels = s["test"] - fold
    return (f"on {s['examples']} distinct examples ({folded}); the candidate the gate "
            f"scored was fit on {s['train']} of them; held out for the gate: {labels} of the "
            f"sites' newest labels (in the saved model) and {fold} of the data files' gate "
            f"fold (in neither)")


def model_kind(params: Any) -> str:
    """What a spam model's text model is, from its saved ``params``: the bootstrap's
    logistic regression, a retrain's Platt-scaled SVM or the out-of-core trainer's
    hashed SGD model ("" when the version does not say)."""
    if not isinstance(params, dict):
        return ""
    if "n_features" in params:
        return "sgd (hashed, out of core)"
    loss = params.get("loss", "log" if "C" in params else None)  # before the loss was saved
    name = {"hinge": "svm (Platt)", "log": "logreg"}.get(str(loss))
    if name is None:
        return ""
    return f"{name} C={params['C']:g}" if isinstance(params.get("C"), int | float) else name


def model_figures(metrics: dict[str, Any]) -> str:
    """A version's held-out figures in one line: accuracy and MCC of a spam model, the
    TOXICITY ROC AUC of a toxicity model (one AUC per attribute, no accuracy)."""
    toxicity = metrics.get("TOXICITY")
    if isinstance(toxicity, dict):
        return f"TOXICITY auc={toxicity.get('roc_auc', float('nan')):.4f}"
    return (f"acc={metrics.get('accuracy', float('nan')):.4f} "
            f"mcc={metrics.get('mcc', float('nan')):.4f}")


@models.command("promote")
@click.argument("version")
@click.option("--force", is_flag=True,
              help="promote a version its evaluation gate refused (recorded as forced)")
@pass_ctx
def models_promote(obj: Context, version: str, force: bool) -> None:
    """Make VERSION current. A version the gate refused needs --force."""
    from service.cli.retrain import announce
    from service.registry.versions import refused_by_gate
    from service.scoring.model import load_scorer
    from service.scoring.toxicity import load_toxicity_scorer

    meta = obj.registry.metadata(version)
    refused = refused_by_gate(meta)
    if refused is not None and not force:
        click.echo(f"error: the evaluation gate refused {version}:", err=True)
        for reason in refused["reasons"]:
            click.echo(f"  {reason}", err=True)
        click.echo("promote it anyway with --force (recorded as forced, with these figures)",
                   err=True)
        sys.exit(3)
    obj.registry.compile(version)  # if saved without it: workers then load no scikit-learn
    if meta.get("family") == "toxicity":
        load_toxicity_scorer(obj.registry, version)
    else:
        load_scorer(obj.registry, version)  # refuse what the service would refuse
    action = "force" if refused is not None else "promote"
    obj.registry.set_current(version, action=action, detail=refused)
    announce(obj, action, version, detail=refused)
    click.echo(f"current model is now {version}"
               + (" (forced past a refusing gate; recorded)" if refused else ""))


@models.command("compile")
@click.argument("versions", nargs=-1)
@pass_ctx
def models_compile(obj: Context, versions: tuple[str, ...]) -> None:
    """Add compiled tables (lean.json) to versions saved before they existed.

    Workers serve a compiled version without scikit-learn (about 90 MB less per
    worker); a version without tables still serves, compiled at load. Default:
    every version.
    """
    for version in versions or [str(m["version"]) for m in obj.registry.versions()]:
        done = obj.registry.compile(version)
        click.echo(f"{version}: {'compiled' if done else 'nothing to do'}")


@models.command("rollback")
@click.option("--family", default="spam", show_default=True)
@pass_ctx
def models_rollback(obj: Context, family: str) -> None:
    """Make the family's previous current version current again."""
    from service.cli.retrain import announce

    version = obj.registry.rollback(family)
    announce(obj, "rollback", version, family=family)
    click.echo(f"rolled back: current {family} model is now {version}")


# --- database and config -----------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(obj: Context) -> None:
    """Apply pending migrations (run before starting new code in production)."""
    from service.store import migrate
    obj.store  # noqa: B018 - opening the store migrates
    click.echo(f"schema at revision {migrate.current_revision(obj.store.engine)}")


@main.group()
def journal() -> None:
    """The write-behind journals: checks answered but perhaps not yet committed."""


def _journal_root(obj: Context) -> Path:
    from service.store.writebehind import JOURNAL_DIR

    return obj.settings.data_dir.resolve() / JOURNAL_DIR


@journal.command("status")
@pass_ctx
def journal_status(obj: Context) -> None:
    """Journals (live, or left by a dead process) and dead letters, as JSON."""
    from service.store.writebehind import journal_status as status

    click.echo(json.dumps(status(_journal_root(obj)), indent=2))


@journal.command("replay")
@pass_ctx
def journal_replay(obj: Context) -> None:
    """Commit what dead processes left now (a running service does it within 5 s)."""
    from service.store.writebehind import replay_orphans

    n = replay_orphans(_journal_root(obj), obj.store, batch_size=obj.settings.write_behind_batch)
    click.echo(f"replayed {n} checks")


@journal.command("retry-dead-letters")
@pass_ctx
def journal_retry(obj: Context) -> None:
    """Offer the rows the database refused to it again (after fixing the cause)."""
    from service.store.writebehind import retry_dead_letters

    stored, refused = retry_dead_letters(_journal_root(obj), obj.store)
    click.echo(f"stored {stored}, still refused {refused}")
    if refused:
        sys.exit(1)


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


from service.cli.moderation import register as _moderation  # noqa: E402 - needs main

_moderation(main)
from service.cli.toxicity import coral, toxicity  # noqa: E402 - groups that live beside their feature

main.add_command(toxicity)
main.add_command(coral)
from service.cli.rules import rules  # noqa: E402 - groups that live beside their feature

main.add_command(rules)
from service.cli.retrain import register as _register_retrain  # noqa: E402 - needs pass_ctx

_register_retrain(main, models, pass_ctx)

if __name__ == "__main__":
    main()
