"""Real Akismet client libraries from PyPI, unmodified, against a served instance
(``commentmod serve``: gunicorn, two workers):

- ``akismet`` 25.x through its ``http_client=`` seam, a transport that points
  each request at the local server;
- ``pykismet3`` through ``HTTP_PROXY``, the key in the host name;
- ``python-akismet`` 0.4.3, which installs a module also named ``akismet``, in
  a virtualenv of its own (cached under ``.venv-clients/``), also via the proxy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import akismet
import httpx
import pykismet3
import pytest
from conftest import free_port, wait_for_http

from service.store import migrate
from service.store.db import Store, engine_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CLIENT_VENV = ROOT / ".venv-clients" / "python-akismet"
SPAM = "Check out my channel and SUBSCRIBE!!! http://bit.ly/free-money win an iPhone"
HAM = "The council should publish the budget before the vote, not after. Good reporting."
IP = "203.0.113.9"
UA = "Mozilla/5.0 (X11; Linux x86_64)"


class Served:
    """The shared served instance, seen through one site's fresh key."""

    def __init__(self, base: str, blog: str, key: str, site_id: int, store: Store) -> None:
        self.base, self.blog, self.key, self.site_id, self.store = base, blog, key, site_id, store

    def labels(self) -> list[tuple[str, str, str, bool]]:
        """(content, label, source, is_test) of this site's labels, oldest first."""
        sql = ("select c.content, l.label, l.source, l.is_test from labels l "
               "join comments c on c.id = l.comment_id where c.site_id = ? order by l.id")
        return self.store.read(
            lambda c: [tuple(r) for r in c.exec_driver_sql(sql, (self.site_id,))]
        )

    def checks(self) -> list[tuple[str, str, bool]]:
        sql = ("select source, verdict, is_test from comments "
               "where verdict is not null and site_id = ? order by id")
        return self.store.read(
            lambda c: [tuple(r) for r in c.exec_driver_sql(sql, (self.site_id,))]
        )


@pytest.fixture(scope="module")
def server(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[str, Store]]:
    """One ``commentmod serve`` (gunicorn, two workers) for the module: starting one
    costs 10-20 s on the shared machine. Each test uses a site of its own."""
    root = tmp_path_factory.mktemp("akismet-served")
    url = f"sqlite:///{root / 'store.sqlite3'}"
    store = Store(engine_for(url))
    migrate.upgrade(store.engine)
    port = free_port()
    env = {**os.environ, "COMMENTMOD_ENV": "testing",
           "COMMENTMOD_MODEL_DIR": str(trained_model_dir),
           "COMMENTMOD_DATA_DIR": str(root / "var"), "COMMENTMOD_DATABASE_URL": url,
           "COMMENTMOD_SECRET_KEY": "test-secret", "COMMENTMOD_LOG_LEVEL": "WARNING"}
    with (root / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/healthz", timeout=90)
        yield base, store
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        store.engine.dispose()


@pytest.fixture
def served(server: tuple[str, Store], request: pytest.FixtureRequest) -> Served:
    base, store = server
    blog = f"https://{request.node.name.replace('_', '-')}.example/"
    key, site_id = store.create_key(blog)
    return Served(base, blog, key, site_id, store)


@pytest.fixture
def proxy_env(served: Served, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Reach the served instance as the HTTP proxy for rest.akismet.com."""
    env = {"HTTP_PROXY": served.base, "http_proxy": served.base, "NO_PROXY": "", "no_proxy": ""}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


# --- akismet (PyPI, James Bennett) ------------------------------------------------


class ToLocalServer(httpx.HTTPTransport):
    """Rewrites scheme, host and port of every request to the local server."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.target = httpx.URL(base)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self.target.scheme, host=self.target.host, port=self.target.port
        )
        return super().handle_request(request)


def http_client(served: Served) -> httpx.Client:
    # The client's own default timeout is 1 s; the shared CI machine gets a margin.
    return httpx.Client(transport=ToLocalServer(served.base), timeout=5.0,
                        headers={"User-Agent": akismet.USER_AGENT})


def test_pypi_akismet_client(served: Served) -> None:
    config = akismet.Config(key=served.key, url=served.blog)
    with pytest.raises(akismet.APIKeyError):
        akismet.SyncClient.validated_client(
            config=akismet.Config(key="wrongkey1234", url=served.blog),
            http_client=http_client(served),
        )
    client = akismet.SyncClient.validated_client(config=config, http_client=http_client(served))
    assert client.verify_key() is True
    assert client.verify_key("wrongkey1234", served.blog) is False
    assert client.verify_key(served.key, "https://someone-else.example") is False

    # (Latency against the client's 1 s default timeout is measured in bench/, not here.)
    spam = client.comment_check(IP, user_agent=UA, comment_content=SPAM,
                                comment_author="Free Money", comment_type="comment")
    assert spam in (akismet.CheckResponse.SPAM, akismet.CheckResponse.DISCARD)
    assert client.comment_check(IP, user_agent=UA, comment_content=HAM,
                                comment_author="Jane Reader") == akismet.CheckResponse.HAM
    # Akismet's test conventions; is_test keeps them out of labels and reports.
    test_text = HAM + " (testing the form)"
    spam_test = client.comment_check(IP, comment_author="akismet-guaranteed-spam",
                                     comment_content=test_text, is_test=True)
    assert spam_test == akismet.CheckResponse.SPAM
    assert client.comment_check(IP, user_role="administrator", comment_content=SPAM + " test",
                                is_test=True) == akismet.CheckResponse.HAM
    assert client.comment_check(IP, comment_content=test_text, honeypot_field_name="hp",
                                is_test=True) == akismet.CheckResponse.HAM
    assert client.submit_spam(IP, user_agent=UA, comment_content=HAM) is True
    assert client.submit_ham(IP, user_agent=UA, comment_content=SPAM) is True

    sites = client.key_sites()  # sent without any key: the default reports every site
    assert isinstance(sites, dict)
    [month] = [k for k in sites if k not in {"limit", "offset", "total"}]
    site = served.blog.removeprefix("https://").rstrip("/")
    assert [r for r in sites[month] if r["site"] == site] == [
        {"site": site, "api_calls": 2, "spam": 1, "ham": 1, "missed_spam": 1,
         "false_positives": 1, "is_revoked": False}]
    csv_text = client.key_sites(result_format="csv")
    assert isinstance(csv_text, str) and csv_text.startswith("Active sites for all sites")
    assert client.usage_limit() == {"limit": "none", "usage": 2, "percentage": "0.00",
                                    "throttled": False}

    unchecked = akismet.SyncClient(config=akismet.Config(key="wrongkey1234", url=served.blog),
                                   http_client=http_client(served))
    with pytest.raises(akismet.APIKeyError):
        unchecked.comment_check(IP, comment_content=HAM)

    assert served.labels() == [(HAM, "spam", "site", False), (SPAM, "ham", "site", False)]
    assert [c[0] for c in served.checks()] == ["akismet"] * 5
    assert [c[2] for c in served.checks()] == [False, False, True, True, True]


# --- pykismet3 (key in the host name, through HTTP_PROXY) -------------------------


def test_pykismet3_through_a_proxy(served: Served, proxy_env: dict[str, str]) -> None:
    def params(content: str, **extra: str) -> dict[str, str]:
        return {"user_ip": IP, "user_agent": UA, "referrer": "https://news.example/a",
                "comment_content": content, **extra}

    client = pykismet3.Akismet(api_key=served.key, blog_url=served.blog, user_agent="NewsSite/1.0")
    assert client.check(params(SPAM, comment_author="Free Money")) is True
    assert client.check(params(HAM, comment_author="Jane Reader")) is False
    assert client.check(params(HAM, comment_author="akismet-guaranteed-spam",
                               is_test="1")) is True
    client.submit_spam(params(HAM))
    client.submit_ham(params(SPAM))

    stranger = pykismet3.Akismet(api_key="wrongkey1234", blog_url=served.blog, user_agent="x/1")
    with pytest.raises(pykismet3.AkismetServerError, match="invalid"):
        stranger.check(params(HAM))
    elsewhere = pykismet3.Akismet(api_key=served.key, blog_url="https://other.example",
                                  user_agent="x/1")
    with pytest.raises(pykismet3.AkismetServerError, match="invalid"):
        elsewhere.submit_spam(params(HAM))

    assert served.labels() == [(HAM, "spam", "site", False), (SPAM, "ham", "site", False)]
    assert [c[:2] for c in served.checks()] == [("akismet", "spam"), ("akismet", "ham"),
                                                ("akismet", "spam")]


# --- python-akismet 0.4.3, in its own virtualenv -----------------------------------

DRIVER = '''
import json, sys
import akismet
from akismet import Akismet, AkismetServerError, SpamStatus

key, blog, spam, ham = sys.argv[1:5]
out = {"version": akismet.__version__, "module": akismet.__file__}
api = Akismet(key, blog=blog, application_user_agent="NewsSite/1.0")
api.protocol = "http"  # reach the local server through HTTP_PROXY
ua = "Mozilla/5.0"
out["spam"] = api.check("203.0.113.9", ua, comment_author="Free Money", comment_content=spam)
out["ham"] = api.check("203.0.113.9", ua, comment_author="Jane Reader", comment_content=ham)
out["guaranteed"] = api.check("203.0.113.9", ua, comment_author="akismet-guaranteed-spam",
                              comment_content=ham, is_test=True)
api.submit_spam("203.0.113.9", ua, comment_content=ham)
api.submit_ham("203.0.113.9", ua, comment_content=spam)
out["submitted"] = True
bad = Akismet("wrongkey1234", blog=blog, application_user_agent="NewsSite/1.0")
bad.protocol = "http"
try:
    bad.check("203.0.113.9", ua, comment_content=ham)
    out["bad_key"] = "accepted"
except AkismetServerError as exc:
    out["bad_key"] = str(exc)
out["codes"] = {"Ham": SpamStatus.Ham, "ProbableSpam": SpamStatus.ProbableSpam,
                "DefiniteSpam": SpamStatus.DefiniteSpam}
print(json.dumps(out))
'''


def _client_venv() -> Path:
    """python-akismet 0.4.3 in a virtualenv of its own, built once and then reused."""
    python = CLIENT_VENV / "bin" / "python"
    check = [str(python), "-c", "import akismet; assert akismet.__version__ == '0.4.3'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    building = CLIENT_VENV.with_name(f"{CLIENT_VENV.name}.build-{os.getpid()}")
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
    subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", "python-akismet==0.4.3"], check=True)
    try:
        building.rename(CLIENT_VENV)  # another worker may have won the race: fine
    except OSError:
        import shutil

        shutil.rmtree(building, ignore_errors=True)
    return python


@pytest.fixture(scope="session")
def python_akismet() -> Path:
    return _client_venv()


def test_python_akismet_in_its_own_venv(served: Served, proxy_env: dict[str, str],
                                        python_akismet: Path, tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run([str(python_akismet), str(driver), served.key, served.blog, SPAM, HAM],
                          env={**os.environ, **proxy_env}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["version"] == "0.4.3" and ".venv-clients" in out["module"]
    codes = out["codes"]
    assert out["spam"] in (codes["ProbableSpam"], codes["DefiniteSpam"])
    assert out["ham"] == codes["Ham"]
    assert out["guaranteed"] == codes["ProbableSpam"]
    assert out["submitted"] is True
    assert "unknown or revoked API key" in out["bad_key"]  # the debug-help header
    assert served.labels() == [(HAM, "spam", "site", False), (SPAM, "ham", "site", False)]
    assert [c[2] for c in served.checks()] == [False, False, True]
