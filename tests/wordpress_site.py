"""A throwaway WordPress site from Debian's packages, for test_wordpress.py.

- ``MariaDB``: ``mariadbd`` on a data directory and port of its own.
- ``WordPressSite``: Debian's ``/usr/share/wordpress`` (with the Akismet plugin
  it bundles) linked or copied into a document root of its own with a
  ``wp-config.php`` of its own, served by PHP's built-in server on a free port.
- ``Browser``: what a visitor or the site's administrator does with forms and
  links, over HTTP, from a loopback address of its own (WordPress throttles
  comments per IP address, and every visitor has one).

Nothing here touches the machine's own MariaDB, web server or /etc/wordpress.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

WORDPRESS = Path("/usr/share/wordpress")
AKISMET = WORDPRESS / "wp-content" / "plugins" / "akismet"
THEME = WORDPRESS / "wp-content" / "themes" / "twentytwentythree"  # renders the comment form
OFFLINE_UPDATE_CHECK = "WordPress could not establish a secure connection to WordPress.org"
ADMIN_USER = "editor-in-chief"
ADMIN_PASSWORD = "e2e-not-a-real-Passw0rd"
# Debian package -> what must be on the machine for it
NEEDED = {
    "wordpress": lambda: (WORDPRESS / "wp-settings.php").is_file() and AKISMET.is_dir(),
    "wordpress-theme-twentytwentythree": lambda: (THEME / "theme.json").is_file(),
    "php-cli": lambda: shutil.which("php") is not None,
    "php-mysql": lambda: shutil.which("php") is not None and "mysqli" in subprocess.run(
        ["php", "-m"], capture_output=True, text=True, check=False).stdout.split(),
    "mariadb-server": lambda: all(shutil.which(b) for b in ("mariadbd", "mariadb-install-db",
                                                             "mariadb")),
}


def missing_packages() -> list[str]:
    """The Debian packages this harness needs that the machine lacks."""
    return [name for name, present in NEEDED.items() if not present()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(probe: Any, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, httpx.HTTPError):
            if probe():
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready within {timeout} s\n{tail}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a server started with ``start_new_session=True``, with every process of its
    group: ``php -S`` with PHP_CLI_SERVER_WORKERS forks workers that outlive the parent."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# --- MariaDB ---------------------------------------------------------------------


@dataclass
class MariaDB:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "mysqld.sock"

    def _user(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root otherwise

    def start(self) -> MariaDB:
        data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--skip-test-db",
             "--auth-root-authentication-method=normal", *self._user()],
            check=True, capture_output=True, timeout=120,
        )
        log = self.root / "mariadb.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["mariadbd", "--no-defaults", f"--datadir={data}", f"--port={self.port}",
                 "--bind-address=127.0.0.1", f"--socket={self.socket}",
                 f"--pid-file={self.root / 'mariadb.pid'}", "--skip-log-bin",
                 "--innodb-buffer-pool-size=32M", "--skip-name-resolve", *self._user()],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_until(lambda: self.socket.exists() and self.query("select 1") == [["1"]], 60,
                   "mariadbd", log)
        return self

    def query(self, sql: str, database: str = "") -> list[list[str]]:
        """Rows of a query through the ``mariadb`` client, as strings (NULL as 'NULL')."""
        out = subprocess.run(
            ["mariadb", "--no-defaults", "-uroot", f"--socket={self.socket}", "--batch",
             "--skip-column-names", "-e", sql, *([database] if database else [])],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if out.returncode != 0:
            raise OSError(out.stderr.strip())
        return [line.split("\t") for line in out.stdout.splitlines()]

    def stop(self) -> None:
        stop(self.proc)


# --- WordPress -------------------------------------------------------------------

WP_CONFIG = """<?php
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', '127.0.0.1:{db_port}' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
foreach ( array( 'AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT',
		'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT' ) as $name ) {{
	define( $name, 'e2e-only-' . $name );
}}
$table_prefix = 'wp_';
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_LOG', '{debug_log}' );
define( 'WP_DEBUG_DISPLAY', false );
define( 'DISABLE_WP_CRON', true );
// Nothing may leave the machine: a request the connector did not route fails loudly.
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
{extra}
if ( ! defined( 'ABSPATH' ) ) {{
	define( 'ABSPATH', __DIR__ . '/' );
}}
require_once ABSPATH . 'wp-settings.php';
"""


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # same file system and allowed: instant
    except OSError:
        shutil.copy2(src, dst)


@dataclass
class WordPressSite:
    """Debian's WordPress in a document root of its own (PHP resolves ``__DIR__`` to
    the real file, so the tree is hard-linked or copied rather than symlinked)."""

    root: Path
    db: MariaDB
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def docroot(self) -> Path:
        return self.root / "wordpress"

    @property
    def debug_log(self) -> Path:
        return self.root / "debug.log"

    def build(self, wp_config_extra: str = "", mu_plugins: tuple[Path, ...] = ()) -> None:
        shutil.copytree(WORDPRESS, self.docroot, symlinks=True, copy_function=_link_or_copy,
                        ignore=shutil.ignore_patterns("wp-config.php", "languages"))
        (self.docroot / "wp-config.php").write_text(WP_CONFIG.format(
            db_port=self.db.port, debug_log=self.debug_log, extra=wp_config_extra))
        mu = self.docroot / "wp-content" / "mu-plugins"
        mu.mkdir(parents=True, exist_ok=True)
        for plugin in mu_plugins:
            shutil.copy(plugin, mu / plugin.name)
        self.db.query("CREATE DATABASE wordpress CHARACTER SET utf8mb4")

    def start(self) -> None:
        log = self.root / "php-server.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(self.docroot)],
                cwd=self.docroot, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PHP_CLI_SERVER_WORKERS": "2"}, start_new_session=True,
            )
        wait_until(lambda: httpx.get(self.url + "/wp-login.php", timeout=2).status_code < 500,
                   30, "php -S", log)

    def stop(self) -> None:
        stop(self.proc)

    def install(self) -> None:
        """WordPress's own installer, as the site owner fills it in."""
        with httpx.Client(base_url=self.url, timeout=60) as c:
            c.get("/wp-admin/install.php?step=1").raise_for_status()
            r = c.post("/wp-admin/install.php?step=2", data={
                "weblog_title": "The Daily Example", "user_name": ADMIN_USER,
                "admin_password": ADMIN_PASSWORD, "admin_password2": ADMIN_PASSWORD,
                "pw_weak": "1", "admin_email": "desk@news.example", "blog_public": "0",
                "language": ""})
            assert "Success!" in r.text, r.text[-2000:]

    def php(self, code: str) -> str:
        """Run PHP with WordPress loaded (wp-load.php), as WP-CLI would; its stdout."""
        script = self.root / "probe.php"
        script.write_text("<?php\n$_SERVER['HTTP_HOST'] = '127.0.0.1:" + str(self.port) +
                          "';\nrequire '" + str(self.docroot / "wp-load.php") + "';\n" + code)
        out = subprocess.run(["php", str(script)], capture_output=True, text=True, timeout=60,
                             check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def comments(self) -> dict[str, str]:
        """comment_content -> comment_approved ('1', '0', 'spam', 'trash') from the database."""
        rows = self.db.query("SELECT comment_content, comment_approved FROM wp_comments",
                             "wordpress")
        return {content: status for content, status in rows}

    def problems_in_log(self, since: int = 0) -> list[str]:
        """PHP warnings, notices and errors logged after byte offset ``since``, but for
        WordPress's own update checker saying that WordPress.org cannot be reached
        (wp-includes/update.php): the site is offline on purpose."""
        if not self.debug_log.exists():
            return []
        with self.debug_log.open("rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        return [line for line in text.splitlines()
                if re.search(r"PHP (Warning|Notice|Fatal error|Parse error|Recoverable)", line)
                and not (OFFLINE_UPDATE_CHECK in line and "/wp-includes/update.php" in line)]

    def log_size(self) -> int:
        return self.debug_log.stat().st_size if self.debug_log.exists() else 0


# --- forms and links -------------------------------------------------------------


class FormReader(HTMLParser):
    """The fields a browser would submit for the form whose id, or action, matches."""

    def __init__(self, form_id: str = "", action_contains: str = "") -> None:
        super().__init__()
        self.form_id, self.action_contains = form_id, action_contains
        self.inside = False
        self.found = False
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.found:
            wanted = (self.form_id and a.get("id") == self.form_id) or (
                self.action_contains and self.action_contains in a.get("action", ""))
            if wanted:
                self.inside = self.found = True
                self.action = html.unescape(a.get("action", ""))
        elif self.inside and tag in ("input", "textarea") and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            if a.get("type") == "submit":
                return
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def read_form(page: str, *, form_id: str = "", action_contains: str = "",
              ) -> tuple[str, dict[str, str]]:
    reader = FormReader(form_id, action_contains)
    reader.feed(page)
    assert reader.found, f"no form {form_id or action_contains!r} on the page"
    return reader.action, reader.fields


def page_text(page: str) -> str:
    """What a reader sees of a page: no scripts, no tags, single spaces."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


class Browser:
    """One person at one loopback address, with cookies."""

    def __init__(self, site: WordPressSite, address: str = "127.0.0.1") -> None:
        self.site = site
        self.http = httpx.Client(base_url=site.url, timeout=60, follow_redirects=True,
                                 transport=httpx.HTTPTransport(local_address=address))

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        r = self.http.get(path)
        r.raise_for_status()
        return r

    def submit(self, action: str, fields: dict[str, str]) -> httpx.Response:
        r = self.http.post(action, data=fields)
        r.raise_for_status()
        return r

    # --- the visitor
    def comment(self, post_path: str, author: str, email: str, text: str,
                **hidden: str) -> httpx.Response:
        """Fill the post's comment form as a visitor (``hidden``: fields only a bot
        fills, like the plugin's honeypot ``ak_hp_textarea``)."""
        action, fields = read_form(self.get(post_path).text, form_id="commentform")
        assert "ak_hp_textarea" in fields and "ak_js" in fields, "Akismet's fields are there"
        fields.update({"author": author, "email": email, "url": "", "comment": text, **hidden})
        fields["ak_js"] = str(int(time.time() * 1000))  # what the form's script puts there
        return self.submit(action, fields)

    # --- the administrator
    def log_in(self) -> None:
        self.http.cookies.set("wordpress_test_cookie", "WP Cookie check")
        r = self.submit("/wp-login.php", {"log": ADMIN_USER, "pwd": ADMIN_PASSWORD,
                                          "testcookie": "1", "rememberme": "forever",
                                          "redirect_to": self.site.url + "/wp-admin/"})
        assert "/wp-admin/" in str(r.url) and "wp-admin-bar" in r.text, "logged in"

    def follow_link(self, page: str, pattern: str) -> httpx.Response:
        """Click the first link whose (unescaped) href matches ``pattern``."""
        hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', page)]
        matching = [h for h in hrefs if re.search(pattern, h)]
        assert matching, f"no link like {pattern!r}"
        href = matching[0]
        return self.get(href if href.startswith("http") else "/wp-admin/" + href)
