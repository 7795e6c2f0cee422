"""Settings: defaults, environment, validation with errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

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
