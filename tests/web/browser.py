#!/usr/bin/env python3
"""Browser test of `pftrack serve` (issue 13) in Debian's headless Chromium, driven by
Playwright (never a downloaded browser: executable_path=/usr/bin/chromium).

Run by tests/web_e2e.rs against a server it started on a database loaded from
fixtures/scenarios (plus the last day of pftrack-loggen traffic, for the overview),
with users created by `pftrack user add`:
  admin      role admin
  netadmin   role domain, scope example.net

What it checks, as a person would:
  1. The login page; a wrong password is refused; the admin logs in.
  2. Keyboard only: Tab from the top of the search page reaches the recipient field of
     the search form; typing an address and Enter runs the search.
  3. Search by recipient finds the expected statuses (bounced, sent after a deferral,
     expired, sent through the content filter).
  4. The message page of a message with a bounced recipient shows every recipient with
     its attempts, and the linked non-delivery notification, whose page links back.
  5. The overview page renders its charts.
  6. At 360 px width the search and message pages need no horizontal scrolling and the
     search form stays usable.
  7. Logout: the session is gone (the search page asks for a login again, and the old
     cookie no longer opens the API).
  8. The domain user: searching another domain's addresses shows nothing, a message
     outside the scope is a 404 by URL, through the API with the session and with a
     bearer token; the user's own message shows only the recipients in scope.

Screenshots go to --artefacts (one per step, and one on any failure). Waits are on
conditions (Playwright's auto-waiting locators and expect), never sleeps.

Usage: browser.py --base-url http://127.0.0.1:PORT --artefacts DIR
       (passwords and the domain user's token from PFTRACK_WEB_ADMIN_PASSWORD,
        PFTRACK_WEB_DOMAIN_PASSWORD, PFTRACK_WEB_DOMAIN_TOKEN)
"""

import argparse
import os
import re
import sys
import tempfile
import traceback

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Longest wait for one condition (the server answers in milliseconds; CI is slow).
TIMEOUT_MS = 15_000
# Tab presses allowed to reach the search form from the top of the page.
MAX_TABS_TO_FORM = 12
PHONE_WIDTH = 360

# The fixtures' days (fixtures/scenarios, loaded as 2025 UTC); the generated traffic is
# in the last 24 hours (the default window).
FIXTURE_FROM = "2025-03-01T00:00"
FIXTURE_TO = "2025-03-19T00:00"

# fixtures/scenarios/multi_recipient.log: 2D9E8F7A6B from alice@example.com to
# carol@ and dan@example.net (sent) and erin@example.org (bounced), whose
# non-delivery notification is 3E0F1A2B3C.
MULTI = "/message/mx1/2D9E8F7A6B/2025-03-14T07:00:01.000000Z"
NDR_QUEUE_ID = "3E0F1A2B3C"
# fixtures/scenarios/deferred_then_sent.log: alice@example.org to
# carol@slow.example.net, deferred once, then sent (no example.net address at all).
SLOW = "/message/mx1/6C7D8E9F0A/2025-03-14T08:00:00.000000Z"


class Run:
    def __init__(self, base, artefacts, docs_img=None):
        self.docs_img = docs_img
        self.base = base.rstrip("/")
        self.artefacts = artefacts
        self.step = 0
        self.passed = 0

    def url(self, path):
        return self.base + path

    def shot(self, page, name, full_page=True):
        self.step += 1
        path = os.path.join(self.artefacts, f"{self.step:02d}-{name}.png")
        page.screenshot(path=path, full_page=full_page)
        return path

    def doc_shot(self, page, name):
        """With --docs-img: the visible part of the page for docs/web.md (docs/img/web-*.png)."""
        if self.docs_img:
            page.screenshot(path=os.path.join(self.docs_img, f"web-{name}.png"))

    def ok(self, what):
        self.passed += 1
        print(f"ok {self.passed} - {what}", flush=True)


def refused_as_csrf(page):
    """Fail with the cause when the server answered a form post with its CSRF error."""
    if page.locator("main h1", has_text="403").count() and "CSRF" in page.locator("main").inner_text():
        raise AssertionError(
            "the server refused a form posted by Chromium as a CSRF attempt. With "
            "`Referrer-Policy: no-referrer` on the pages, Chromium sends `Origin: null` on "
            "same-origin form posts, and check_origin (crates/web/src/auth.rs) refuses "
            "'null'; `Referrer-Policy: same-origin` keeps the Origin on same-origin posts."
        )


def login(run, page, user, password):
    page.goto(run.url("/search"))
    # Not logged in: the login page.
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("User").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    refused_as_csrf(page)
    expect(page.get_by_role("search")).to_be_visible()
    expect(page.locator("header")).to_contain_text(user)


def search(run, page, **params):
    """Fill the search form (times are the fixtures' days unless given) and submit."""
    page.goto(run.url("/search"))
    form = page.get_by_role("search")
    form.locator("select[name=window]").select_option("")
    form.locator("input[name=from]").fill(params.pop("from_", FIXTURE_FROM))
    form.locator("input[name=to]").fill(params.pop("to", FIXTURE_TO))
    for name, value in params.items():
        form.locator(f"input[name={name}]").fill(value)
    form.get_by_role("button", name="Search").click()
    page.wait_for_load_state()
    expect(page.get_by_role("search")).to_be_visible()


def result_rows(page):
    return page.locator("main table tbody tr")


def row_with(page, recipient):
    return result_rows(page).filter(has_text=recipient)


def no_horizontal_scroll(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"the page is {width} px wide at {PHONE_WIDTH} px"


def admin_tests(run, ctx, admin_password):
    # The persistent context opens with one blank page: use it.
    page = ctx.pages[0] if ctx.pages else ctx.new_page()

    # 1. Login: a wrong password first.
    page.goto(run.url("/"))
    expect(page).to_have_url(re.compile(r"/login"))
    run.shot(page, "login")
    page.get_by_label("User").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    refused_as_csrf(page)
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("search")).to_have_count(0)
    run.ok("a wrong password is refused with an error on the login page")
    login(run, page, "admin", admin_password)
    run.ok("admin logs in and lands on the search page")

    # 2. Keyboard only: from the top of the page to the recipient field.
    page.goto(run.url("/search"))
    page.locator("body").focus()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached = False
    for presses in range(1, MAX_TABS_TO_FORM + 1):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.name") == "recipient":
            reached = True
            break
    assert reached, f"Tab did not reach the recipient field in {MAX_TABS_TO_FORM} presses"
    focused_outline = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return s.outlineStyle !== 'none' || s.boxShadow !== 'none'; })()"
    )
    assert focused_outline, "the focused field shows no focus indicator"
    page.keyboard.type("erin@example.org")
    # The window: custom, from/to of the fixtures, typed into their fields.
    page.locator("input[name=from]").fill(FIXTURE_FROM)
    page.locator("input[name=to]").fill(FIXTURE_TO)
    page.locator("select[name=window]").select_option("")
    page.locator("input[name=recipient]").focus()
    page.keyboard.press("Enter")
    expect(row_with(page, "erin@example.org")).to_have_count(1)
    run.ok(f"Tab reaches the search form in {presses} presses; Enter searches")

    # 3. Search by recipient: the expected statuses.
    expect(row_with(page, "erin@example.org")).to_contain_text("bounced")
    expect(row_with(page, "erin@example.org")).to_contain_text("5.1.1")
    run.shot(page, "search-bounced")
    run.ok("erin@example.org: bounced, dsn 5.1.1")

    search(run, page, recipient="carol@slow.example.net")
    row = row_with(page, "carol@slow.example.net")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("sent")
    expect(row.locator("td.num")).to_have_text("2")
    run.ok("carol@slow.example.net: sent after a deferral, 2 attempts")

    search(run, page, sender="dave@example.org")
    expect(result_rows(page).filter(has_text="expired")).not_to_have_count(0)
    run.ok("dave@example.org's message: expired")

    # fixtures/scenarios/content_filter.log: one Message-ID, two queue files.
    search(run, page, id="scan-me@example.org")
    rows = row_with(page, "bob@mx1.example.com")
    expect(rows).to_have_count(2)  # the hand-off to the content filter, the delivery
    expect(rows.filter(has_text="127.0.0.1")).to_have_count(1)
    expect(rows.filter(has_text="local")).to_have_count(1)
    run.ok("Message-ID scan-me@example.org: the content filter's hand-off and the final delivery")

    search(run, page, sender="alice@example.com")
    expect(result_rows(page)).to_have_count(3)
    for status_ in ("bounced", "sent"):
        expect(result_rows(page).filter(has_text=status_)).not_to_have_count(0)
    run.shot(page, "search")
    run.doc_shot(page, "search")
    run.ok("alice@example.com's message: three recipients, sent and bounced")

    # 4. The message page: recipients, attempts, the linked NDR.
    row_with(page, "erin@example.org").get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(r"/message/mx1/2D9E8F7A6B/"))
    main = page.locator("main")
    expect(main.get_by_role("heading", level=1)).to_contain_text("2D9E8F7A6B")
    recipients = main.locator("section.recipient")
    expect(recipients).to_have_count(3)
    erin = recipients.filter(has_text="erin@example.org")
    expect(erin).to_contain_text("bounced")
    expect(erin.locator("ol.timeline li")).to_have_count(1)
    expect(erin.locator("ol.timeline li")).to_contain_text("User unknown in virtual mailbox table")
    for who in ("carol@example.net", "dan@example.net"):
        expect(recipients.filter(has_text=who).locator("ol.timeline li")).to_have_count(1)
    ndr = main.get_by_role("link", name=re.compile(NDR_QUEUE_ID))
    expect(ndr).to_have_count(1)
    ndr_item = main.locator("li").filter(has=page.get_by_role("link", name=re.compile(NDR_QUEUE_ID)))
    expect(ndr_item).to_contain_text("non-delivery notification")
    run.shot(page, "message")
    run.doc_shot(page, "message")
    run.ok("message 2D9E8F7A6B: 3 recipients with their attempts, the linked NDR")
    ndr.click()
    expect(page).to_have_url(re.compile(rf"/message/mx1/{NDR_QUEUE_ID}/"))
    back = page.locator("main").get_by_role("link", name=re.compile("2D9E8F7A6B"))
    expect(back).to_have_count(1)
    expect(page.locator("main section.recipient")).to_contain_text("alice@example.com")
    run.ok("the NDR's page: delivered to alice@example.com, links back to its parent")

    # A deferral then a delivery: two attempts in the timeline.
    page.goto(run.url(SLOW))
    expect(page.locator("main ol.timeline li")).to_have_count(2)
    expect(page.locator("main ol.timeline li").first).to_contain_text("deferred")
    run.ok("message 6C7D8E9F0A: the deferral and the delivery in its timeline")

    # 5. The overview of the last 24 hours (the generated traffic).
    page.get_by_role("navigation", name="main").get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("main svg").first).to_be_visible()
    assert page.locator("main svg").count() >= 2, "the overview has fewer than 2 charts"
    expect(page.locator("main table tbody tr").first).to_be_visible()  # top failure reasons
    run.shot(page, "overview")
    run.doc_shot(page, "overview")
    run.ok("the overview renders its charts (SVG)")

    # 6. 360 px wide.
    phone = ctx.new_page()
    phone.set_viewport_size({"width": PHONE_WIDTH, "height": 780})
    phone.goto(run.url("/search"))
    search(run, phone, recipient="erin@example.org")
    expect(row_with(phone, "erin@example.org")).to_have_count(1)
    no_horizontal_scroll(phone)
    # Each result row is stacked, so the recipient gets the width of the screen rather
    # than a column a few characters wide, and reads on one line.
    to = row_with(phone, "erin@example.org").locator("td[data-label=To]")
    expect(to).to_have_text("erin@example.org")  # its label comes from CSS (::before)
    to_box = to.bounding_box()
    assert to_box and to_box["width"] >= 0.75 * PHONE_WIDTH, f"the To cell at 360 px: {to_box}"
    assert to_box["height"] < 40, f"erin@example.org wraps at 360 px: {to_box}"
    run.ok(f"search results at {PHONE_WIDTH} px: stacked rows, the recipient on one line")
    box = phone.locator("input[name=recipient]").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, f"recipient field {box}"
    run.shot(phone, "search-360px")
    phone.goto(run.url(MULTI))
    expect(phone.locator("main section.recipient")).to_have_count(3)
    no_horizontal_scroll(phone)
    run.shot(phone, "message-360px")
    phone.close()
    run.ok(f"search and message pages at {PHONE_WIDTH} px: no horizontal scrolling")

    # 7. Logout.
    cookies = ctx.cookies()
    page.goto(run.url("/search"))
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    refused_as_csrf(page)
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(run.url("/search"))
    expect(page).to_have_url(re.compile(r"/login"))
    stale = ctx.request.get(
        run.url("/api/v1/me"),
        headers={"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in cookies)},
    )
    assert stale.status == 401, f"the logged-out session still opens the API: {stale.status}"
    run.ok("logout ends the session (page and API)")
    page.close()


def domain_tests(run, ctx, password, token):
    page = ctx.new_page()
    login(run, page, "netadmin", password)
    run.ok("netadmin (domain example.net) logs in")

    # Another domain's addresses: nothing, not even the row of a message that also
    # went to example.net.
    for other in ("carol@slow.example.net", "erin@example.org", "alice@example.com"):
        search(run, page, recipient=other)
        expect(result_rows(page)).to_have_count(0)
        expect(page.locator("main")).to_contain_text("No mail matches")
    run.shot(page, "domain-search-other")
    run.ok("searching other domains' recipients shows nothing")

    # Its own domain: carol and dan, not erin.
    search(run, page, sender="alice@example.com")
    expect(result_rows(page)).to_have_count(2)
    expect(page.locator("main")).not_to_contain_text("erin@example.org")
    page.goto(run.url(MULTI))
    expect(page.locator("main section.recipient")).to_have_count(2)
    expect(page.locator("main")).not_to_contain_text("erin@example.org")
    # The NDR went to alice@example.com: out of scope, so not linked either.
    expect(page.locator("main").get_by_role("link", name=re.compile(NDR_QUEUE_ID))).to_have_count(0)
    run.ok("its own message shows carol@ and dan@example.net only, no erin@, no NDR link")

    # A message of another domain by URL: 404, and nothing of it on the page.
    response = page.goto(run.url(SLOW))
    assert response is not None and response.status == 404, f"{SLOW}: {response and response.status}"
    expect(page.locator("main")).not_to_contain_text("carol@slow.example.net")
    run.shot(page, "domain-message-404")
    api_path = "/api/v1/messages/" + SLOW.removeprefix("/message/")
    with_session = page.request.get(run.url(api_path))
    assert with_session.status == 404, f"API with the session: {with_session.status}"
    with_token = ctx.request.get(
        run.url(api_path),
        headers={"Authorization": f"Bearer {token}", "Cookie": ""},
    )
    assert with_token.status == 404, f"API with the bearer token: {with_token.status}"
    assert "carol@slow.example.net" not in with_token.text()
    own = ctx.request.get(
        run.url("/api/v1/messages/" + MULTI.removeprefix("/message/")),
        headers={"Authorization": f"Bearer {token}", "Cookie": ""},
    )
    assert own.status == 200, f"the token cannot open its own message: {own.status}"
    assert "erin@example.org" not in own.text()
    run.ok("another domain's message: 404 by URL, by API with the session and with a token")
    page.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--artefacts", required=True)
    ap.add_argument("--docs-img", help="also write web-search/message/overview.png here")
    args = ap.parse_args()
    os.makedirs(args.artefacts, exist_ok=True)
    run = Run(args.base_url, args.artefacts, args.docs_img)
    admin_password = os.environ["PFTRACK_WEB_ADMIN_PASSWORD"]
    domain_password = os.environ["PFTRACK_WEB_DOMAIN_PASSWORD"]
    domain_token = os.environ["PFTRACK_WEB_DOMAIN_TOKEN"]
    expect.set_options(timeout=TIMEOUT_MS)

    failed = False
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="pftrack-chromium-") as profile:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1100, "height": 760},
            timezone_id="Europe/Paris",
        )
        ctx.set_default_timeout(TIMEOUT_MS)
        try:
            admin_tests(run, ctx, admin_password)
            ctx.clear_cookies()
            domain_tests(run, ctx, domain_password, domain_token)
        except Exception:
            failed = True
            traceback.print_exc()
            for i, p in enumerate(ctx.pages):
                try:
                    path = run.shot(p, f"FAILURE-{i}")
                    print(f"failure screenshot: {path} ({p.url})", file=sys.stderr)
                except Exception as e:  # the page may be gone
                    print(f"no failure screenshot of page {i}: {e}", file=sys.stderr)
        finally:
            ctx.close()
    print(f"{run.passed} passed, {1 if failed else 0} failed")
    print(f"screenshots: {args.artefacts}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
