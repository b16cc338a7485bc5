"""The web UI in a real browser: Debian's headless Chromium driven by Playwright, against a real
``cloacina-ctl server``. Log in (a wrong key first: the API's 401 text shows) → upload an archive →
roll back to the first version → run its workflow from the workflow page → watch it fail → read the
failed task's error and log → retry → the new attempt completes → cancel another run while it waits.
A screenshot of each page is saved (``$CLOACINA_SCREENSHOTS``, or the test's tmp dir; the path is printed).

Chromium and Playwright are required in CI, never skipped there: ``nox`` installs Playwright and, as root,
Debian's Chromium (``.ci/chromium.sh``); elsewhere a missing Chromium skips with the reason, as PostgreSQL does."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CLOACINA_CHROMIUM", "/usr/bin/chromium")
WORKFLOW = "public::ui_flow::ui_flow"
WAIT_MS = 90_000  # only so that a broken page fails the test instead of hanging it


@pytest.fixture(scope="session")
def ui_archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/packages/ui-flow`` packaged as a ``.cloacina`` archive (cached by content)."""
    load_helper = importlib.import_module("tests.conftest").load_helper  # tests/ is not a package
    builder = load_helper("cloacina_tests_reg_archives", "reg-archives/archives.py")
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("cloacina-reg-archives") if cache is not None else tmp_path_factory.mktemp("ui-archive")
    return builder.archive(where, "ui-flow", builder.PACKAGES / "ui-flow")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def ui_archive_2(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same project at version 2.0.0."""
    load_helper = importlib.import_module("tests.conftest").load_helper
    builder = load_helper("cloacina_tests_reg_archives", "reg-archives/archives.py")
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("cloacina-reg-archives") if cache is not None else tmp_path_factory.mktemp("ui-archive-2")
    return builder.archive(  # type: ignore[no-any-return]
        where, "ui-flow-2", builder.PACKAGES / "ui-flow", version="2.0.0"
    )


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A page of a fresh headless Chromium (Debian's), closed after the test."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright is not installed: pip install playwright (the nox test sessions install it; "
            "never `playwright install`: the test uses Debian's Chromium)."
        )
    if not Path(CHROMIUM).exists():
        reason = (
            f"No Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` (`nox -s tests` does, as "
            "root; so does .ci/run), or point CLOACINA_CHROMIUM at one"
        )
        if os.environ.get("CI"):  # as for PostgreSQL: required in CI, never skipped there
            pytest.fail(f"Chromium is required in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    base = Path(os.environ["CLOACINA_SCREENSHOTS"]) if os.environ.get("CLOACINA_SCREENSHOTS") else tmp_path
    where = base / "screenshots" / re.sub(r"[^\w.-]+", "_", request.node.name)
    where.mkdir(parents=True, exist_ok=True)
    print(f"screenshots of the UI: {where}")
    return where


def test_upload_run_watch_read_the_failed_log_and_retry_in_a_browser(
    deployment: Any, ui_archive: Path, ui_archive_2: Path, browser_page: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    key = deployment.key("admin", name="browser")
    server = deployment.start()
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))  # a script error fails the test at its end

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)

    # / leads to the UI's login; a wrong key shows the API's 401 message and keeps the user out
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/ui/#/login$"))
    page.fill("#api-key", "cloacina_not-a-real-key")
    page.click("button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("The API key is not valid")
    expect(page.locator("#nav")).to_be_hidden()
    shot("01-login-refused")

    page.fill("#api-key", key)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Packages")
    expect(page.locator("#who")).to_contain_text("public · admin · browser")
    expect(page.locator("#flash")).to_be_hidden()

    # upload the archive: it is registered, active, and listed with its version
    page.set_input_files("#archive", str(ui_archive))
    page.click("#upload")
    expect(page.locator("#flash")).to_contain_text("ui-flow 1.0.0: registered (active)")
    package = page.locator('section[data-package="ui-flow"]')
    expect(package.locator('tr[data-version="1.0.0"]')).to_contain_text("active")

    # a newer version becomes active; roll back to 1.0.0 from the page
    page.set_input_files("#archive", str(ui_archive_2))
    page.click("#upload")
    expect(page.locator("#flash")).to_contain_text("ui-flow 2.0.0: registered (active)")
    expect(package.locator("h2")).to_contain_text("active: 2.0.0")
    roll_back = package.locator('tr[data-version="1.0.0"] button')
    expect(roll_back).to_have_text("Roll back")
    roll_back.click()
    expect(page.locator("#flash")).to_contain_text("ui-flow: active version 1.0.0 (was 2.0.0)")
    expect(package.locator("h2")).to_contain_text("active: 1.0.0")
    expect(package.locator('tr[data-version="2.0.0"] button')).to_have_text("Activate")
    shot("02-packages")

    # the workflow's DAG is drawn; run it with a context naming a flag file that does not exist yet
    page.click("#nav >> text=Workflows")
    card = page.locator(f'section[data-workflow="{WORKFLOW}"]')
    for task in ("prepare", "flaky", "report"):
        expect(card.locator(f'svg.dag g[data-task="{task}"]')).to_be_visible()
    flag = deployment.tmp / "flag"
    card.locator("textarea.context").fill(f'{{"flag": "{flag}"}}')
    shot("03-workflows")
    card.locator("button.run").click()
    expect(page).to_have_url(re.compile(r"#/executions/[0-9a-f-]+$"))
    execution_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#execution")).to_contain_text(f"{WORKFLOW} 1.0.0")  # the rolled-back version runs

    # watch it end: prepare completes, flaky fails (report never runs)
    expect(page.locator("#execution-status")).to_have_text("failed", timeout=WAIT_MS)
    tasks = page.locator("#tasks")
    expect(tasks.locator('tr[data-task="prepare"] .status')).to_have_text("completed")
    expect(tasks.locator('tr[data-task="flaky"] .status')).to_have_text("failed")
    expect(tasks.locator('tr[data-task="flaky"]')).to_contain_text("flag file flag is missing")
    shot("04-execution-failed")

    # the failed task's attempt: its error and what it printed
    tasks.locator('tr[data-task="flaky"] a.task').click()
    panel = page.locator("#task-panel")
    first = panel.locator('.attempt[data-attempt="1"]')
    expect(first.locator(".error")).to_contain_text("flag file flag is missing")
    expect(first.locator(".log")).to_contain_text(f"flaky: looking for {flag}")
    shot("05-failed-task-log")

    # retry: the failed task runs again (attempt 2), finds its flag, and the execution completes
    flag.touch()
    page.click("#retry")
    expect(page.locator("#execution-status")).to_have_text("completed", timeout=WAIT_MS)
    expect(tasks.locator('tr[data-task="flaky"] .attempts')).to_have_text("2")
    expect(tasks.locator('tr[data-task="report"] .status')).to_have_text("completed")
    second = panel.locator('.attempt[data-attempt="2"]')
    expect(second.locator(".log")).to_contain_text("flaky: found it")
    expect(page.locator("#retry")).to_be_disabled()
    shot("06-execution-retried")

    # the executions list shows it, live, with its final status
    page.click("#nav >> text=Executions")
    row = page.locator(f'tr[data-execution="{execution_id}"]')
    expect(row.locator(".status")).to_have_text("completed")
    shot("07-executions")

    # cancel one whose first task waits on a gate that never opens
    page.click("#nav >> text=Workflows")
    card.locator("textarea.context").fill(f'{{"gate": "{deployment.tmp / "never"}", "flag": "{flag}"}}')
    card.locator("button.run").click()
    expect(page).not_to_have_url(re.compile(f"{execution_id}$"))
    expect(tasks.locator('tr[data-task="prepare"] .status')).to_have_text("running", timeout=WAIT_MS)
    page.click("#cancel")
    expect(page.locator("#execution-status")).to_have_text("cancelled", timeout=WAIT_MS)
    expect(page.locator("#cancel")).to_be_disabled()
    shot("08-execution-cancelled")

    page.click("#nav >> text=Schedules")
    expect(page.locator("h1")).to_have_text("Schedules & triggers")
    shot("09-schedules-triggers")

    # logging out forgets the key
    page.click("#logout")
    expect(page.locator("#api-key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('cloacina.apiKey')") is None
    assert errors == [], errors


def test_trust_a_key_require_signatures_and_revoke_it_in_a_browser(
    deployment: Any, browser_page: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    made = deployment.ctl("signing-keys", "generate", "alice")
    pem = (Path(made["public_key"])).read_text()
    read_key, admin_key = deployment.key("read", name="viewer"), deployment.key("admin", name="browser")
    server = deployment.start()
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def login(key: str) -> None:
        page.goto(server.url + "/ui/#/login")
        page.fill("#api-key", key)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Packages")

    # a read key sees the page; adding a key is refused with the API's message
    login(read_key)
    page.click("#nav >> text=Trust")
    expect(page.locator("#policy")).to_contain_text("are not required")
    expect(page.locator("main")).to_contain_text("No trusted keys yet.")
    page.fill("#trust-name", "alice")
    page.fill("#trust-key", pem)
    page.click("#trust-add")
    expect(page.locator("#flash")).to_contain_text("has role read; POST /api/v1/trust needs admin or above.")
    page.click("#logout")

    login(admin_key)
    page.click("#nav >> text=Trust")
    page.click("#toggle-policy")  # no key trusted yet: refused, saying what to do
    expect(page.locator("#flash")).to_contain_text("trusts no key, so requiring signatures would refuse every package")
    page.fill("#trust-name", "alice")
    page.fill("#trust-key", pem)
    page.click("#trust-add")
    expect(page.locator("#flash")).to_contain_text(f"alice: added ({made['fingerprint'][:16]})")
    row = page.locator('#trusted-keys tr[data-key="alice"]')
    expect(row).to_contain_text(made["fingerprint"])
    page.click("#toggle-policy")
    expect(page.locator("#flash")).to_contain_text("Signatures are now required")
    expect(page.locator("#policy")).to_have_attribute("data-required", "true")
    page.screenshot(path=str(screenshots / "01-trust.png"), full_page=True)
    row.locator("button", has_text="Revoke").click()
    expect(page.locator("#flash")).to_contain_text("Revoked alice; versions it signed: none")
    expect(row).to_have_attribute("data-trusted", "false")
    page.screenshot(path=str(screenshots / "02-trust-revoked.png"), full_page=True)
    assert errors == []
