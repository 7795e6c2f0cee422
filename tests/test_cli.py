"""The commentmod command: train, evaluate, models, db, config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli.main import main
from service.registry.versions import LEAN, METADATA, Registry


@pytest.fixture
def env(tmp_path: Path, model_dir: Path) -> dict[str, str]:
    return {
        "COMMENTMOD_MODEL_DIR": str(model_dir),
        "COMMENTMOD_DATA_DIR": str(tmp_path / "var"),
        "COMMENTMOD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
    }


def run(env: dict[str, str], *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def small_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "small.jsonl"
    spam = ["buy cheap pills now http://bit.ly/p", "check out my channel subscribe",
            "win a free iphone click here", "make money fast visit my site"]
    ham = ["the council vote was close", "great reporting on the budget",
           "I disagree with the mayor here", "thanks for covering the school story"]
    rows = [{"content": f"{t} {i}", "label": "spam"} for i in range(15) for t in spam]
    rows += [{"content": f"{t} {i}", "label": "ham"} for i in range(15) for t in ham]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_train_json_summary_and_promote(env: dict[str, str], tmp_path: Path,
                                        model_dir: Path) -> None:
    before = Registry(model_dir).current()
    result = run(env, "train", "--data", str(small_dataset(tmp_path)), "--json", "--promote")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["promoted"] is True
    assert summary["version"] != before
    assert {"accuracy", "precision", "recall", "f1", "mcc", "roc_auc"} <= set(summary["metrics"])
    assert Registry(model_dir).current() == summary["version"]


def test_train_without_promote_leaves_the_current_model(env: dict[str, str], tmp_path: Path,
                                                        model_dir: Path) -> None:
    before = Registry(model_dir).current()
    result = run(env, "train", "--data", str(small_dataset(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "not promoted" in result.output
    assert Registry(model_dir).current() == before


@pytest.mark.parametrize(("content", "message"), [
    ("content,label\nhi,perhaps\n", "neither spam nor ham"),
    ("content,label\nonly ham,ham\n", "both spam and ham"),
])
def test_train_bad_data_is_a_clear_error(env: dict[str, str], tmp_path: Path, content: str,
                                         message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = CliRunner().invoke(main, ["train", "--data", str(path)], env=env)
    assert result.exit_code != 0
    assert message in result.output


def test_train_missing_file(env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "nope.csv")], env=env)
    assert result.exit_code != 0
    assert "no such file" in result.output


def test_a_commands_refusal_is_one_error_line_like_every_other(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A command's own refusal reads like a domain error ("error: ..."), not click's
    "Error: ..."; a usage error keeps click's usage text."""
    result = CliRunner().invoke(main, ["evaluate", "--data", str(tmp_path / "nope")], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "Error:" not in result.output
    usage = CliRunner().invoke(main, ["evaluate", "--protocol", "nope"], env=env)
    assert usage.exit_code == 2 and "Usage:" in usage.output


def test_evaluate_holdout_compares_with_the_baselines(env: dict[str, str], tmp_path: Path) -> None:
    """What the README's table says: the held-out split, beside bogofilter and TF-IDF."""
    data = str(small_dataset(tmp_path))
    result = run(env, "evaluate", "--data", data, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report) == ["commentmod", "bogofilter", "tfidf-lr"]
    assert all(m["n"] == report["commentmod"]["n"] > 0 for m in report.values())  # one split
    assert report["commentmod"]["threshold"] == 0.5
    table = run(env, "evaluate", "--data", data).output.splitlines()
    assert table[0].startswith("held-out split: trained on ")
    assert [line.split()[0] for line in table[3:]] == ["commentmod", "bogofilter", "tfidf-lr"]
    only = json.loads(run(env, "evaluate", "--data", data, "--system", "tfidf-lr", "--json").output)
    assert list(only) == ["tfidf-lr"]


def test_evaluate_lovo_needs_groups(env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "--protocol", "lovo", "--data",
                                       str(small_dataset(tmp_path))], env=env)
    assert result.exit_code != 0
    assert "at least two groups" in result.output


def test_models_list_promote_rollback(env: dict[str, str], tmp_path: Path,
                                      model_dir: Path) -> None:
    first = Registry(model_dir).current()
    trained = json.loads(run(env, "train", "--data", str(small_dataset(tmp_path)),
                             "--json").output)["version"]
    listing = run(env, "models", "list").output
    assert f"* {first}" in listing and trained in listing
    # The bootstrap's logistic regression; the site's data trained the SVM.
    lines = {line[2:].split()[0]: line for line in listing.splitlines() if line.strip()}
    assert "logreg C=20" in lines[first] and "svm (Platt) C=10" in lines[trained]
    assert run(env, "models", "promote", trained).exit_code == 0
    assert Registry(model_dir).current() == trained
    result = run(env, "models", "rollback")
    assert result.exit_code == 0 and first in result.output
    assert Registry(model_dir).current() == first


@pytest.mark.parametrize("command", ["promote", "compile"])
@pytest.mark.parametrize("version", ["../../etc/passwd", "spam-20200101T000000Z-deadbeef"])
def test_promote_and_compile_refuse_unknown_or_unsafe_versions(
    env: dict[str, str], version: str, command: str
) -> None:
    result = CliRunner().invoke(main, ["models", command, version], env=env)
    assert result.exit_code == 2
    assert result.output.startswith("error:")


def test_models_compile_adds_tables_once(env: dict[str, str], model_dir: Path) -> None:
    version = Registry(model_dir).current()
    assert version is not None
    (model_dir / version / LEAN).unlink()  # as saved before compiled tables existed
    meta_path = model_dir / version / METADATA
    meta_path.write_text(json.dumps({k: v for k, v in json.loads(meta_path.read_text()).items()
                                     if k != "lean"}))
    assert f"{version}: compiled" in run(env, "models", "compile").output
    assert f"{version}: nothing to do" in run(env, "models", "compile", version).output


def test_db_upgrade_and_config(env: dict[str, str]) -> None:
    result = run(env, "db", "upgrade")
    assert result.exit_code == 0 and "revision" in result.output
    shown = json.loads(run(env, "config").output)
    assert shown["secret_key"] == "***"
    assert "COMMENTMOD_MODEL_DIR" in run(env, "config", "--all").output


def test_bad_environment_is_one_clear_line(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["config"], env={**env, "COMMENTMOD_BATCH_MAX": "x"})
    assert result.exit_code == 2
    assert "COMMENTMOD_BATCH_MAX" in result.output


def test_the_cli_finds_the_same_state_from_any_directory(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"COMMENTMOD_HOME": str(tmp_path / "home"), "COMMENTMOD_MODEL_DIR": str(model_dir),
           "COMMENTMOD_DATA_DIR": "", "COMMENTMOD_DATABASE_URL": ""}
    env = {k: v for k, v in env.items() if v}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    monkeypatch.delenv("COMMENTMOD_DATA_DIR", raising=False)
    monkeypatch.delenv("COMMENTMOD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path / "a")
    first = CliRunner().invoke(main, ["keys", "create", "--site", "https://news.example"], env=env)
    assert first.exit_code == 0, first.output
    assert "note: created a new, empty database at" in first.stderr
    assert str(tmp_path / "home" / "var" / "commentmod.sqlite3") in first.stderr
    monkeypatch.chdir(tmp_path / "b")
    listing = CliRunner().invoke(main, ["keys", "list"], env=env)
    assert "news.example" in listing.stdout
    assert "new, empty database" not in listing.stderr
    assert not [p for p in (tmp_path / "a", tmp_path / "b") if any(p.iterdir())]


def test_models_list_shows_each_familys_own_figures() -> None:
    from service.cli.main import model_figures

    assert model_figures({"accuracy": 0.98, "mcc": 0.93}) == "acc=0.9800 mcc=0.9300"
    toxicity = {"TOXICITY": {"n": 10, "roc_auc": 0.947}, "INSULT": {"roc_auc": 0.9}}
    assert model_figures(toxicity) == "TOXICITY auc=0.9470"
    assert model_figures({}) == "acc=nan mcc=nan"  # a version saved without an evaluation


def test_models_list_names_the_kind_of_model() -> None:
    from service.cli.main import model_kind

    assert model_kind({"C": 10.0, "loss": "hinge", "signal_weight": 0.5}) == "svm (Platt) C=10"
    assert model_kind({"C": 20.0, "loss": "log"}) == "logreg C=20"
    assert model_kind({"C": 20.0, "signal_weight": 0.5}) == "logreg C=20"  # saved before
    assert model_kind({"loss": "log_loss", "alpha": 2e-6, "n_features": 2**20}) == (
        "sgd (hashed, out of core)")
    assert model_kind(None) == model_kind({}) == model_kind({"loss": "odd"}) == ""


def test_an_unknown_variable_is_a_warning_line(env: dict[str, str]) -> None:
    result = run({**env, "COMMENTMOD_REDIS_DB": "5"}, "config")
    assert result.exit_code == 0
    assert ("warning: COMMENTMOD_REDIS_DB is not a setting and is ignored (did you mean "
            "COMMENTMOD_REDIS_URL?)") in result.stderr


@pytest.mark.parametrize(
    ("host", "port", "environ", "bind"),
    [
        (None, None, {}, "127.0.0.1:8000"),
        (None, None, {"COMMENTMOD_BIND": "127.0.0.1:8300"}, "127.0.0.1:8300"),
        (None, None, {"COMMENTMOD_BIND": " unix:/run/cm.sock "}, "unix:/run/cm.sock"),
        (None, None, {"COMMENTMOD_BIND": "  "}, "127.0.0.1:8000"),
        # An option given wins over the variable; the other part takes its default.
        (None, 9000, {"COMMENTMOD_BIND": "0.0.0.0:8300"}, "127.0.0.1:9000"),
        ("0.0.0.0", None, {"COMMENTMOD_BIND": "127.0.0.1:8300"}, "0.0.0.0:8000"),
        ("::1", 9001, {}, "[::1]:9001"),  # an IPv6 address in brackets, as gunicorn reads it
    ],
)
def test_serve_listens_where_its_options_or_commentmod_bind_say(
    host: str | None, port: int | None, environ: dict[str, str], bind: str
) -> None:
    """An operator who set only COMMENTMOD_BIND (documented) got port 8000, the
    option's default, without a word."""
    from service.cli.main import bind_address

    assert bind_address(host, port, environ) == bind


def test_train_says_counts_that_add_up() -> None:
    """A trial operator read "on 7395 examples (...; train 7382, held out 1328)" and
    could not make the numbers add up: the held-out side includes the gate fold,
    which the saved model leaves out."""
    from service.cli.main import training_counts

    summary = {"trainer": "in-memory", "examples": 7395, "folded_duplicates": 631,
               "train": 7382, "test": 1328, "gate_fold": 1315}
    assert training_counts(summary) == (
        "on 7395 distinct examples (631 duplicates folded); the candidate the gate scored "
        "was fit on 7382 of them; held out for the gate: 13 of the sites' newest labels (in "
        "the saved model) and 1315 of the data files' gate fold (in neither)")
    streamed = {"trainer": "out-of-core", "examples": 3000, "folded_duplicates": 2,
                "train": 2400, "test": 600}
    assert training_counts(streamed) == (
        "on 3000 distinct examples (2 duplicates folded): fit on 2400, held out 600 for the "
        "gate and thresholds")
