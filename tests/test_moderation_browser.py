"""The moderation queue in headless Chromium against a real gunicorn instance."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moderation_helpers import PASSWORD, add_comment, comment_id

from service.moderation import moderators as mods
from service.store import migrate
from service.store.db import Store, engine_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def reason(description: str, direction: str) -> dict[str, object]:
    return {"kind": "word", "description": description, "direction": direction, "weight": 1.0}


@pytest.fixture
def seeded(sqlite_url: str) -> Iterator[tuple[Store, dict[str, str]]]:
    """The served instance's database with a moderator and a realistic queue."""
    store = Store(engine_for(sqlite_url))
    migrate.upgrade(store.engine)
    store.ensure_site("news.example")
    mods.create(store, "alice", PASSWORD, sites=["news.example"], hasher=mods.FAST)
    guids = {
        "xss": add_comment(store, XSS, verdict="unsure", probability=0.31, author="Mallory",
                           author_email="m@evil.example", user_ip="203.0.113.66",
                           reasons=[reason("markup: HTML tags in the text", "spam")]),
        "near": add_comment(store, "Great piece, but the budget figures in paragraph 3 look off.",
                            verdict="unsure", probability=0.22, author="Ruth"),
        "toxic": add_comment(
            store, "You are an idiot and so is everyone who reads this rag.",
            verdict="ham", probability=0.30, author="Angry Reader",
            toxicity={"scores": {"TOXICITY": 0.93, "INSULT": 0.88, "PROFANITY": 0.12},
                      "spans": [[11, 16, 0.95]]},
        ),
        "spammy": add_comment(store, "Earn $500/day from home!!! visit http://bit.ly/x now",
                              verdict="spam", probability=0.97, author="Cash King",
                              author_url="http://bit.ly/x",
                              reasons=[reason("link to a URL shortener", "spam"),
                                       reason("word 'earn'", "spam")]),
        "ham": add_comment(store, "Thanks for covering the council meeting, very thorough.",
                           verdict="ham", probability=0.02, author="Dev",
                           reasons=[reason("word 'council'", "ham")]),
        "bulk1": add_comment(store, "CHEAP PILLS cheap pills best price", verdict="spam",
                             probability=0.99, author="pills"),
    }
    add_comment(store, "another site's comment", site="other.example")
    yield store, guids
    store.engine.dispose()


@pytest.fixture
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_moderator_labels_with_mouse_and_keyboard_safely(
    serve: Callable[..., str], seeded: tuple[Store, dict[str, str]], browser: object
) -> None:
    store, guids = seeded
    base = serve(workers=2, env={"COMMENTMOD_PASSWORD_HASH_COST": "fast"})
    page = browser.new_page(viewport={"width": 1280, "height": 1000})  # type: ignore[attr-defined]
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # Log in: the queue redirects to the login form and back.
    page.goto(base + "/moderate/")
    assert "/moderate/login" in page.url
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#queue .comment")
    cookie = next(c for c in page.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # Only alice's site, hostile text shown as text, nothing executed.
    items = page.locator("#queue .comment")
    shown = [items.nth(i).get_attribute("data-guid") for i in range(items.count())]
    assert set(shown) == set(guids.values())
    assert set(shown[:2]) == {guids["near"], guids["xss"]}  # the unsure ones come first
    first, second = shown[0], shown[1]
    xss_item = page.locator(f"#c-{guids['xss']} .content")
    assert xss_item.inner_text() == XSS
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#queue img").count() == 0
    assert page.locator("mark.toxic").inner_text() == "idiot"
    assert not dialogs

    # Screenshot of the queue as a moderator first sees it.
    out = ROOT / "artifacts" / "moderation-queue.png"
    out.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(out), full_page=True)

    # Mouse: click "Ham" on the first comment; the row updates in place.
    page.click(f"#c-{first} button[value=ham]")
    page.wait_for_selector(f"#c-{first}.labelled-ham")
    # Keyboard: focus moved to the next comment; s marks it spam, j/k move, h marks ham.
    assert page.locator("#queue .comment.current").get_attribute("data-guid") == second
    page.keyboard.press("s")
    page.wait_for_selector(f"#c-{second}.labelled-spam")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    current = page.locator("#queue .comment.current").get_attribute("data-guid")
    page.keyboard.press("h")
    page.wait_for_selector(f"#c-{current}.labelled-ham")
    # Toxicity buttons record a toxicity label.
    page.click(f"#c-{guids['toxic']} button[value=toxic]")
    page.wait_for_selector(f"#c-{guids['toxic']} form.toxicity .status")

    def latest(key: str, task: str = "spam") -> str | None:
        return store.latest_label(comment_id(store, guids[key]), task=task)

    assert store.latest_label(comment_id(store, first)) == "ham"
    assert store.latest_label(comment_id(store, second)) == "spam"
    assert store.latest_label(comment_id(store, str(current))) == "ham"
    assert latest("toxic", "toxicity") == "toxic"
    entry = store.label_history(comment_id(store, second))[-1]
    assert (entry["source"], entry["actor"]) == ("moderator", "alice")

    # Bulk: select two with x / the mouse, then one click.
    page.click(f"#c-{guids['bulk1']} .body")
    page.keyboard.press("x")
    page.check(f"#c-{guids['spammy']} input[type=checkbox]")
    with page.expect_navigation():
        page.click("#bulk button[value=spam]")
    assert latest("bulk1") == "spam" and latest("spammy") == "spam"

    # A form posted without its CSRF token is refused and stores nothing.
    target = next(g for g in shown if store.latest_label(comment_id(store, str(g))) is None)
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.evaluate(
            """guid => {
                const f = document.createElement('form');
                f.method = 'post';
                f.action = '/moderate/comments/' + guid + '/label';
                const i = document.createElement('input');
                i.name = 'label'; i.value = 'spam';
                f.appendChild(i);
                document.body.appendChild(f);
                f.submit();
            }""",
            target,
        )
    assert refused.value.status == 400
    page.wait_for_load_state()
    assert "security token" in page.inner_text("body")
    assert store.latest_label(comment_id(store, str(target))) is None

    # The queue after labelling, all statuses: labelled rows are marked.
    page.goto(base + "/moderate/?status=all")
    page.screenshot(path=str(out.with_name("moderation-queue-labelled.png")), full_page=True)

    # The stats page counts the labels.
    page.goto(base + "/moderate/stats")
    assert "news.example" in page.inner_text("table.stats")
    assert "other.example" not in page.inner_text("body")
    assert not [m for m in console if "Content Security Policy" in m]
    assert page.evaluate("typeof window.__pwned") == "undefined"
    page.close()


SPAM_TEXT = "Earn $500 a day from home, visit www.cash-now.biz today"
TOXIC_TEXT = "You are an idiot and so is everyone who reads this."


def test_copies_are_one_entry_with_both_scores_and_one_click_labels_them(
    serve: Callable[..., str], sqlite_url: str, browser: object
) -> None:
    """11 checks of one spam text are one entry; a text checked for spam and then for
    toxicity is one entry with its verdict and its highlighted words; one click on
    the entry labels every copy; the empty queue needs no emoji font."""
    store = Store(engine_for(sqlite_url))
    migrate.upgrade(store.engine)
    store.ensure_site("news.example")
    mods.create(store, "alice", PASSWORD, sites=["news.example"], hasher=mods.FAST)
    copies = [add_comment(store, SPAM_TEXT, verdict="spam", probability=0.97)
              for _ in range(11)]
    checked = add_comment(store, TOXIC_TEXT, verdict="unsure", probability=0.4)
    add_comment(store, TOXIC_TEXT, verdict=None, probability=None,  # type: ignore[arg-type]
                toxicity={"scores": {"TOXICITY": 0.93}, "spans": [[11, 16, 0.95]]})
    base = serve(workers=1, env={"COMMENTMOD_PASSWORD_HASH_COST": "fast"})
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page.goto(base + "/moderate/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#queue .comment")

    items = page.locator("#queue .comment")
    assert items.count() == 2
    assert "2 texts" in page.inner_text(".toolbar .count")
    spam_entry = page.locator(f"#c-{copies[-1]}")
    assert spam_entry.locator(".copies").inner_text() == "11 copies"
    both = page.locator(f"#c-{checked}")
    assert both.locator(".verdict").inner_text().lower() == "unsure"
    assert both.locator("mark.toxic").inner_text() == "idiot"
    assert both.locator(".toxscores").inner_text().startswith("TOXICITY 0.93")
    assert "no spam score" not in page.inner_text("#queue")
    out = ROOT / "artifacts" / "moderation-queue-copies.png"
    out.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(out), full_page=True)

    spam_entry.locator("button[value=spam]").click()
    page.wait_for_selector(f"#c-{copies[-1]}.labelled-spam")
    assert "with its 10 other copies" in spam_entry.locator(".meta .status").inner_text()
    assert {store.latest_label(comment_id(store, g)) for g in copies} == {"spam"}
    both.locator("button[value=ham]").click()
    page.wait_for_selector(f"#c-{checked}.labelled-ham")

    page.goto(base + "/moderate/")
    empty = page.locator("#queue li.empty").inner_text()
    assert empty == "Nothing to moderate here." and empty.isascii()
    assert page.inner_text("body").isascii() or all(
        ord(ch) < 0x2600 for ch in page.inner_text("body")
    )  # no symbol that only an emoji font draws
    page.close()
    store.engine.dispose()
