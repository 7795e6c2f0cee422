"""Settings: defaults, environment, validation with errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import config
from service.config import describe, load_settings
from service.errors import ConfigurationError


def test_defaults_are_the_single_machine_setup(tmp_path: Path) -> None:
    s = load_settings(environ={"COMMENTMOD_DATA_DIR": str(tmp_path)})
    assert s.env == "development"
    assert s.redis_url == ""
    assert s.resolved_database_url.startswith("sqlite:///")
    assert not s.auth_required
    assert len(s.secret_key) == 64  # generated and kept in data_dir
    again = load_settings(environ={"COMMENTMOD_DATA_DIR": str(tmp_path)})
    assert again.secret_key == s.secret_key


def test_environment_overrides_defaults(tmp_path: Path) -> None:
    s = load_settings(environ={
        "COMMENTMOD_DATA_DIR": str(tmp_path),
        "COMMENTMOD_REDIS_URL": "rediss://:pw@cache.example:6380/2",
        "COMMENTMOD_BATCH_MAX": "10",
        "COMMENTMOD_REQUIRE_AUTH": "true",
        "COMMENTMOD_MODEL_DIR": "/srv/models",
    })
    assert s.batch_max == 10
    assert s.auth_required
    assert s.model_dir == Path("/srv/models")
    assert s.as_public_dict()["redis_url"] == "rediss://:***@cache.example:6380/2"


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"COMMENTMOD_BATCH_MAX": "many"}, "COMMENTMOD_BATCH_MAX"),
        ({"COMMENTMOD_BATCH_MAX": "0"}, "COMMENTMOD_BATCH_MAX"),
        ({"COMMENTMOD_REQUIRE_AUTH": "maybe"}, "COMMENTMOD_REQUIRE_AUTH"),
        ({"COMMENTMOD_ENV": "staging"}, "COMMENTMOD_ENV"),
        ({"COMMENTMOD_REDIS_URL": "http://x"}, "COMMENTMOD_REDIS_URL"),
        ({"COMMENTMOD_LOG_LEVEL": "LOUD"}, "COMMENTMOD_LOG_LEVEL"),
        ({"COMMENTMOD_ENV": "production"}, "COMMENTMOD_SECRET_KEY"),
        ({"COMMENTMOD_ENV": "production", "COMMENTMOD_SECRET_KEY": "s"},
         "COMMENTMOD_DATABASE_URL"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path: Path, environ: dict[str, str],
                                        names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        load_settings(environ={"COMMENTMOD_DATA_DIR": str(tmp_path), **environ})


def test_production_requires_auth(tmp_path: Path) -> None:
    s = load_settings(environ={"COMMENTMOD_ENV": "production", "COMMENTMOD_SECRET_KEY": "k",
                               "COMMENTMOD_DATABASE_URL": "postgresql://db/commentmod",
                               "COMMENTMOD_DATA_DIR": str(tmp_path)})
    assert s.auth_required and s.production


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown setting"):
        load_settings({"no_such_thing": 1}, environ={})


def test_every_setting_is_documented() -> None:
    for name, _default, doc in describe():
        assert name.startswith("COMMENTMOD_") and doc


def test_configuration_page_lists_every_setting() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    missing = [name for name, _, _ in describe() if f"`{name}`" not in page]
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_state_paths_live_under_home_not_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = (tmp_path / "home").resolve()
    s = load_settings(environ={"COMMENTMOD_HOME": str(home)})
    assert (s.home, s.model_dir, s.data_dir) == (home, home / "models", home / "var")
    s = load_settings(environ={"COMMENTMOD_HOME": str(home), "COMMENTMOD_MODEL_DIR": "m",
                               "COMMENTMOD_DATA_DIR": str(tmp_path / "abs")})
    assert s.model_dir == home / "m"  # relative: under home, never under the cwd
    assert s.data_dir == tmp_path / "abs"
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'abs' / 'commentmod.sqlite3'}"
    assert not (tmp_path / "models").exists() and not (tmp_path / "var").exists()


def test_default_home_is_the_checkout_else_the_xdg_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = Path(__file__).resolve().parents[1]
    assert config.default_home({}) == checkout
    monkeypatch.setattr(config, "CHECKOUT", tmp_path / "site-packages")  # an installed package
    xdg = tmp_path / "xdg"
    assert config.default_home({"XDG_DATA_HOME": str(xdg)}) == xdg / "commentmod"
    assert config.default_home({}) == Path.home() / ".local" / "share" / "commentmod"


def test_an_unknown_variable_is_named_with_the_setting_it_was_meant_to_be() -> None:
    lines = config.unknown_variables({
        "COMMENTMOD_REDIS_DB": "5",  # not a setting: REDIS_URL carries the database
        "COMMENTMOD_BIND": "127.0.0.1:9000",  # gunicorn's, documented
        "COMMENTMOD_TEST_PG": "1",  # the test suite's
        "COMMENTMOD_MODEL_DIR": "/tmp/m",
        "OTHER": "x",
    })
    assert lines == ["COMMENTMOD_REDIS_DB is not a setting and is ignored (did you mean "
                     "COMMENTMOD_REDIS_URL?); see docs/configuration.md"]
