"""The web app end to end in a real headless Chromium (Debian's, driven by Selenium) against the
local gateway serving the built app at /app, the demo data in a database of its own, and a local S3.

Each role signs in through the local demo sign-in, sees its numbers (each checked against what the
API answers for the same token, read from the page's sessionStorage) and completes its main task:
the learner downloads their report, the trainer opens an at-risk learner, the org admin assigns a
learner to a trainer and sees that cohort grow. Screenshots of every dashboard (desktop, and the
learner's at phone width) go to .local/screenshots/.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from local import browser, demo_ids, tokens
from local import s3 as local_s3
from local import stack as local_stack
from local.paths import WEB_DIST
from tests.support.demo import demo_database
from tests.support.gateway import RunningGateway, gateway_process
from tests.web.oidc_support import Provider, provider_server

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".local" / "screenshots"
BUCKET = "ms8-reports-web"
T = TypeVar("T")


@pytest.fixture(scope="module")
def web_db(database: str) -> Iterator[str]:
    """The demo in a database of its own: the admin's test reassigns learners."""
    with demo_database(f"{database}_web") as name:
        yield name


@pytest.fixture(scope="module")
def idp() -> Iterator[Provider]:
    """The app on an origin of its own with a sign-in service (the deployed path), as learner-03."""
    with provider_server(demo_ids.user_id(demo_ids.ACME, "learner-03")) as provider:
        yield provider


@pytest.fixture(scope="module")
def stack(web_db: str, idp: Provider) -> Iterator[RunningGateway]:
    assert (WEB_DIST / "index.html").is_file(), "the web app is not built: run `make web`"
    store = local_s3.S3(port=0, data_dir=None)
    endpoint = store.start(BUCKET)
    try:
        # The API allows the app's other origin by CORS, as the template allows CloudFront's.
        env = {**local_stack.function_env(endpoint, db=web_db), "REPORTS_BUCKET": BUCKET, "MS8_CORS_ORIGINS": idp.url}
        with gateway_process(env, workers=2) as running:
            idp.api_url = running.url
            yield running
    finally:
        store.stop()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def chrome(downloads: Path) -> Iterator[WebDriver]:
    with browser.chromium(downloads) as driver:
        yield driver


def wait(driver: WebDriver, until: Callable[[WebDriver], T], timeout: float = 10) -> T:
    # A section re-rendered while the condition reads it: look again.
    return WebDriverWait(driver, timeout, poll_frequency=0.05,
                         ignored_exceptions=[StaleElementReferenceException]).until(until)


def css(driver: WebDriver | WebElement, selector: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def sign_in(driver: WebDriver, url: str, login: str, keyboard: bool = False, screenshot: str | None = None) -> str:
    """Through the sign-in page as a demo user (a click, or Tab to the button and Enter);
    returns the token the app keeps."""
    driver.get(f"{url}/app/config.json")  # this origin, but no app running to use the old session
    driver.execute_script("sessionStorage.clear()")
    driver.get_log("browser")  # what earlier pages logged is theirs
    driver.get(f"{url}/app/")
    button = wait(driver, lambda d: (css(d, f'button[data-login="{login}"]') or [None])[0])
    if screenshot:
        shoot(driver, screenshot)
        assert accessibility_violations(driver) == []
    if keyboard:
        for _ in range(200):  # Tab through the page until the user's button has the focus
            if driver.switch_to.active_element == button:
                break
            driver.switch_to.active_element.send_keys(Keys.TAB)
        assert driver.switch_to.active_element == button, "the user's button is not reachable by Tab"
        button.send_keys(Keys.ENTER)
    else:
        button.click()
    wait(driver, lambda d: css(d, "[data-dashboard]"))
    token = driver.execute_script("return sessionStorage.getItem('ms8.token')")
    assert token
    return str(token)


def http_json(url: str, token: str, method: str, path: str, body: Any = None,
              role: str | None = None) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if role:
        headers["X-Active-Role"] = role
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, dict(resp.getheaders()), json.loads(raw) if raw else None
    finally:
        conn.close()


def api(url: str, token: str, path: str, role: str | None = None) -> Any:
    """What the API answers for the same token."""
    status, _, body = http_json(url, token, "GET", path, role=role)
    assert status == 200, (path, status, body)
    return body


def loaded(driver: WebDriver, section: str) -> WebElement:
    """A dashboard section once its content (not the loading line) is in."""
    def ready(d: WebDriver) -> WebElement | None:
        el = css(d, f"#{section}")
        if el and not css(el[0], "[aria-busy]") and "Loading" not in el[0].text:
            return el[0]
        return None
    return wait(driver, ready)


def number(attr: str | None) -> float | None:
    """A data-value attribute as the number it holds (JavaScript writes 3.0 as "3"); "" is null."""
    return None if not attr else float(attr)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{int(value * 100 + 0.5)}%"  # Math.round, not banker's rounding


def velocity(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}/wk"


def shoot(driver: WebDriver, name: str, width: int | None = None) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    browser.full_page_screenshot(driver, path, width)
    assert path.stat().st_size > 10_000  # a page, not a blank
    return path


AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"  # a dev dependency of the app, never shipped


def accessibility_violations(driver: WebDriver) -> list[str]:
    """axe-core's WCAG 2 A and AA rules (contrast, names, labels, ARIA...) on the page as it is."""
    driver.execute_script(AXE.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
        ".then(r => done(r.violations.map(v => `${v.id} (${v.impact}): ${v.nodes.length} x ${v.nodes[0].target}`)))"
        ".catch(e => done([`axe failed: ${e}`]));")
    return list(result)


def no_page_errors(driver: WebDriver) -> None:
    """Nothing failed in the page: no script error, no failed request (the API's 4xx included).
    The browser's own request for /favicon.ico, which it makes now and then whatever the page
    declares (the app declares an empty icon), is not the page's."""
    errors = [e["message"] for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and "/favicon.ico" not in e["message"]]
    assert errors == []


# --- learner -----------------------------------------------------------------------------------


def test_learner_sees_their_numbers_and_downloads_their_report(stack: RunningGateway, chrome: WebDriver,
                                                                downloads: Path) -> None:
    token = sign_in(chrome, stack.url, "acme:learner-01", screenshot="signin")
    headline = loaded(chrome, "headline")
    analytics = {a["analyticsType"]: a["data"] for a in api(stack.url, token, "/v1/analytics?limit=50")["items"]}
    comparison = {c["analyticsType"]: c for c in api(stack.url, token, "/v1/comparison")["items"]}
    shown = {t.get_attribute("data-metric"): t for t in css(headline, ".tile")}
    for metric, kind, fmt in [("velocity", "learning_velocity", velocity), ("engagement", "engagement", percent),
                              ("mastery", "mastery", percent), ("gap", "skill_gap", percent)]:
        tile, expected = shown[metric], analytics[kind][metric]
        assert number(tile.get_attribute("data-value")) == expected, metric
        assert css(tile, ".tile-value")[0].text == fmt(expected), metric
        peers = comparison[kind]
        band = css(tile, ".peers")[0]
        if peers["available"]:
            assert band.get_attribute("data-peers") == "available"
            assert float(band.get_attribute("data-p25") or "nan") == peers["peers"]["p25"]
            assert f"Peers ({peers['peers']['userCount']})" in band.text
        else:
            assert band.text == peers["message"]
    assert "vs the 4 weeks before" in shown["velocity"].text  # the trend the snapshot records

    history = loaded(chrome, "history")
    weeks = api(stack.url, token, f"/v1/learners/{demo_ids.LEARNER}")["weeks"]
    rows = css(history, "figure")[0].find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.get_attribute("data-period") for r in rows] == [w["weekStart"] for w in weeks]
    assert [r.find_elements(By.TAG_NAME, "td")[0].get_attribute("textContent") for r in rows] == \
        [str(w["completions"]) for w in weeks]
    assert css(history, "canvas"), "the chart is drawn"

    progress = loaded(chrome, "progress")
    game = api(stack.url, token, "/v1/gamification")
    tiles = {t.get_attribute("data-metric"): t for t in css(progress, ".tile")}
    assert number(tiles["streak"].get_attribute("data-value")) == game["streak"]["current"]
    assert number(tiles["level"].get_attribute("data-value")) == game["level"]
    assert f"{game['points']} points" in tiles["level"].text
    assert [b.get_attribute("data-badge") for b in css(progress, "[data-badge]")] == [b["id"] for b in game["badges"]]

    board = loaded(chrome, "leaderboard")
    expected_board = api(stack.url, token, "/v1/leaderboard?limit=10")
    names = [r.find_element(By.TAG_NAME, "th").text for r in css(board, "tbody tr")]
    top = [e["displayName"] + (" (you)" if e["isYou"] else "") for e in expected_board["items"]]
    assert names[:len(top)] == top
    assert css(board, "tr.you"), "the learner's own place is marked"
    shoot(chrome, "learner")
    assert accessibility_violations(chrome) == []
    no_page_errors(chrome)

    # The main task: "download my report" gives a PDF in the browser's download folder.
    before = set(downloads.iterdir())
    css(chrome, "#report button[data-action=report]")[0].click()
    link = wait(chrome, lambda d: (css(d, "#report-link") or [None])[0], timeout=30)
    assert link.text.startswith("Download ") and link.text.endswith(".pdf")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        new = [p for p in set(downloads.iterdir()) - before if p.suffix == ".pdf"]
        if new:
            break
        time.sleep(0.1)
    assert new, "no PDF was downloaded"
    assert new[0].read_bytes().startswith(b"%PDF")
    assert api(stack.url, token, "/v1/reports?limit=1")["items"][0]["status"] == "ready"


@pytest.mark.parametrize(("login", "section"), [("acme:learner-02", "leaderboard"), ("acme:trainer-02", "learners"),
                                                ("acme:admin", "assignments")])
def test_every_dashboard_fits_a_phone(stack: RunningGateway, chrome: WebDriver, login: str, section: str) -> None:
    """At 375 px the page never scrolls sideways (wide tables scroll inside their card)."""
    phone = {"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True}
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    try:
        sign_in(chrome, stack.url, login, keyboard=True)
        loaded(chrome, section)
        # A page wider than the screen widens a phone's layout viewport: both must stay at 375.
        assert chrome.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]") == [375, 375]
        if login.endswith("learner-02"):
            assert accessibility_violations(chrome) == []
            shoot(chrome, "learner-phone", 375)
    finally:
        chrome.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# --- trainer -----------------------------------------------------------------------------------


def test_trainer_sorts_the_cohort_by_keyboard_and_opens_an_at_risk_learner(stack: RunningGateway,
                                                                          chrome: WebDriver) -> None:
    token = sign_in(chrome, stack.url, "acme:trainer-01")
    table = loaded(chrome, "learners")
    expected = api(stack.url, token, "/v1/learners")
    rows = css(table, "tbody tr[data-user]")
    assert {r.get_attribute("data-user") for r in rows} == {x["userId"] for x in expected["items"]}
    by_id = {x["userId"]: x for x in expected["items"]}
    for row in rows:
        x = by_id[row.get_attribute("data-user") or ""]
        cells = row.find_elements(By.CSS_SELECTOR, "td [data-value]")
        assert [number(c.get_attribute("data-value")) for c in cells] == [
            x["metrics"][k] for k in ("velocity", "engagement", "mastery", "skillGap")]
        assert [li.text for li in row.find_elements(By.CSS_SELECTOR, "[data-risk]")] == \
            [r["message"] for r in x["riskReasons"]]
    summary = loaded(chrome, "summary")
    assert number(css(summary, '[data-metric="atRisk"]')[0].get_attribute("data-value")) == expected["atRisk"]

    loaded(chrome, "trends")
    shoot(chrome, "trainer")  # as the trainer first sees it: those at risk on top

    # Sorting by keyboard: focus the Mastery header's button, Enter sorts descending, Enter again ascending.
    sort = css(table, 'button[data-sort="mastery"]')[0]
    chrome.execute_script("arguments[0].focus()", sort)
    chrome.switch_to.active_element.send_keys(Keys.ENTER)
    wait(chrome, lambda d: css(d, 'th[aria-sort="descending"] [data-sort="mastery"]'))
    shown = [by_id[r.get_attribute("data-user") or ""]["metrics"]["mastery"] for r in css(table, "tbody tr[data-user]")]
    known = [m for m in shown if m is not None]
    assert known == sorted(known, reverse=True)
    chrome.switch_to.active_element.send_keys(Keys.ENTER)  # focus stays on the header's button
    wait(chrome, lambda d: css(d, 'th[aria-sort="ascending"] [data-sort="mastery"]'))
    shown = [by_id[r.get_attribute("data-user") or ""]["metrics"]["mastery"] for r in css(table, "tbody tr[data-user]")]
    assert [m for m in shown if m is not None] == sorted(known)

    trends = loaded(chrome, "trends")
    rollups = api(stack.url, token, "/v1/aggregates?granularity=weekly&scope=cohort")["items"]
    assert len(css(trends, "figure")[0].find_elements(By.CSS_SELECTOR, "tbody tr")) == len(rollups)

    # The organization's days as a trainer reads them: small cells come back suppressed and read so.
    Select(css(trends, "#trend-scope")[0]).select_by_value("organization")
    Select(css(trends, "#trend-granularity")[0]).select_by_value("daily")
    org_days = api(stack.url, token, "/v1/aggregates?granularity=daily&scope=organization")["items"]
    assert any(r["suppressed"] for r in org_days), "the demo has suppressed days for a trainer"

    def daily_rows(d: WebDriver) -> list[WebElement] | None:
        rows = css(d, "#trends figure tbody tr")
        periods = [r.get_attribute("data-period") for r in rows]
        return rows if periods == 3 * [r["periodStart"] for r in org_days] else None
    rows = wait(chrome, daily_rows)
    for figure, field in zip(css(trends, "figure"), ("activeShare", "velocity", "meanScore"), strict=True):
        for row, rollup in zip(figure.find_elements(By.CSS_SELECTOR, "tbody tr"), org_days, strict=True):
            assert row.get_attribute("data-period") == rollup["periodStart"]
            cell = row.find_elements(By.TAG_NAME, "td")[0].get_attribute("textContent")
            if rollup["suppressed"]:
                assert cell == "suppressed", (field, rollup)
            else:
                assert cell not in ("suppressed", "—") or rollup[field] is None, (field, rollup)
    assert rows
    chrome.execute_script("arguments[0].scrollIntoView()", trends)
    shoot(chrome, "trainer-organization-daily")

    # The main task: only the learners at risk, then open the first one.
    css(table, 'input[data-filter="at-risk"]')[0].click()
    at_risk = [x["userId"] for x in expected["items"] if x["atRisk"]]
    assert at_risk, "the demo cohort has learners at risk"
    wait(chrome, lambda d: len(css(d, "#learners tbody tr[data-user]")) == len(at_risk))
    first = css(chrome, "#learners tbody tr[data-user]")[0].get_attribute("data-user")
    css(chrome, f'#learners button[data-open="{first}"]')[0].click()
    drill = wait(chrome, lambda d: (el := css(d, "#drilldown")) and el[0].is_displayed()
                 and "Loading" not in el[0].text and el[0])
    detail = api(stack.url, token, f"/v1/learners/{first}")
    assert css(drill, "h2")[0].text == detail["learner"]["displayName"]
    assert chrome.switch_to.active_element == css(drill, "h2")[0], "focus moves to the drill-down"
    reasons = [r["message"] for r in detail["learner"]["riskReasons"]]
    assert reasons and [li.text for li in css(drill, ".risk-box [data-risk]")] == reasons
    skills = [r.get_attribute("data-skill") for r in css(drill, "table.skills tbody tr")]
    assert skills == [s["skill"] for s in detail["skills"]]
    wait(chrome, lambda d: css(d, "#drilldown canvas"))
    chrome.execute_script("arguments[0].scrollIntoView()", drill)
    shoot(chrome, "trainer-drilldown")
    assert accessibility_violations(chrome) == []

    # The cohort report: the service names it by the trainer's role.
    css(chrome, "#report button[data-action=report]")[0].click()
    wait(chrome, lambda d: css(d, "#report-link"), timeout=30)
    latest = api(stack.url, token, "/v1/reports?limit=1")["items"][0]
    assert (latest["kind"], latest["status"]) == ("cohort", "ready")
    no_page_errors(chrome)


# --- org admin ---------------------------------------------------------------------------------


def cohort_learners(driver: WebDriver, trainer_id: str) -> int:
    return int(css(driver, f'#cohorts tr[data-trainer="{trainer_id}"] [data-field="learners"]')[0].text)


def test_admin_sees_the_organization_and_assigns_a_learner(stack: RunningGateway, chrome: WebDriver) -> None:
    token = sign_in(chrome, stack.url, "acme:admin")
    trends = loaded(chrome, "trends")
    rollups = api(stack.url, token, "/v1/aggregates?granularity=weekly&scope=organization")["items"]
    share_rows = css(trends, "figure")[0].find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.get_attribute("data-period") for r in share_rows] == [r["periodStart"] for r in rollups]
    for row, rollup in zip(share_rows, rollups, strict=True):
        cell = row.find_elements(By.TAG_NAME, "td")[0].get_attribute("textContent")
        assert cell == ("suppressed" if rollup["suppressed"] else percent(rollup["activeShare"]))
    summary = loaded(chrome, "summary")
    last = rollups[-1]
    tile = css(summary, '[data-metric="activeShare"]')[0]
    if last["suppressed"]:
        assert tile.get_attribute("data-suppressed") == "true" and "suppressed" in tile.text
    else:
        assert number(tile.get_attribute("data-value")) == last["activeShare"]

    cohorts = loaded(chrome, "cohorts")
    expected = {c["trainerId"]: c for c in api(stack.url, token, "/v1/cohorts")["items"]}
    assert {r.get_attribute("data-trainer") for r in css(cohorts, "tbody tr")} == set(expected)
    for trainer_id, c in expected.items():
        assert cohort_learners(chrome, trainer_id) == c["learners"]
    loaded(chrome, "assignments")
    shoot(chrome, "admin")
    assert accessibility_violations(chrome) == []

    # The main task: assign learner-01 (trainer-01's) to trainer-02 too; trainer-02's cohort grows.
    trainer = str(demo_ids.user_id(demo_ids.ACME, "trainer-02"))
    before = cohort_learners(chrome, trainer)
    Select(css(chrome, "#assign-learner")[0]).select_by_value(str(demo_ids.LEARNER))
    Select(css(chrome, "#assign-trainer")[0]).select_by_value(trainer)
    css(chrome, 'button[data-action="assign"]')[0].click()
    wait(chrome, lambda d: "is now in" in css(d, "#assign-status")[0].text)
    assert cohort_learners(chrome, trainer) == before + 1
    after = {c["trainerId"]: c["learners"] for c in api(stack.url, token, "/v1/cohorts")["items"]}
    assert after[trainer] == before + 1
    members = wait(chrome, lambda d: (el := css(d, f'#cohort-members [data-cohort-of="{trainer}"]')) and el[0])
    assert members
    assert css(chrome, f'#cohort-members tr[data-user="{demo_ids.LEARNER}"]'), "the learner is listed in the cohort"

    # Skill targets: the saved level is the one the learners' skill gap now measures against.
    skill = css(chrome, "#target-skill")[0]
    skill.send_keys("python")
    level = css(chrome, "#target-level")[0]
    level.clear()
    level.send_keys("90", Keys.ENTER)
    saved = wait(chrome, lambda d: (el := css(d, '#targets li[data-skill="python"]')) and el[0])
    assert "python: target 90%" in saved.text
    skills = {s["skill"]: s for s in api(stack.url, token, f"/v1/learners/{demo_ids.LEARNER}")["skills"]}
    assert skills["python"]["target"] == 0.9
    no_page_errors(chrome)


def test_small_organization_shows_suppressed_cells_never_zero(stack: RunningGateway, chrome: WebDriver) -> None:
    token = sign_in(chrome, stack.url, "globex:admin")
    trends = loaded(chrome, "trends")
    rollups = api(stack.url, token, "/v1/aggregates?granularity=weekly&scope=organization")["items"]
    for figure, field, fmt in zip(css(trends, "figure"), ("activeShare", "velocity", "meanScore"),
                                  (percent, lambda v: "—" if v is None else f"{v:.1f}", percent), strict=True):
        for row, rollup in zip(figure.find_elements(By.CSS_SELECTOR, "tbody tr"), rollups, strict=True):
            cell = row.find_elements(By.TAG_NAME, "td")[0].get_attribute("textContent")
            # A withheld figure reads "suppressed"; a missing one "—"; neither is ever a zero.
            assert cell == ("suppressed" if rollup["suppressed"] else fmt(rollup[field])), (field, rollup)
    shoot(chrome, "admin-small-organization")


def test_a_user_with_two_roles_switches_dashboard(stack: RunningGateway, chrome: WebDriver) -> None:
    """X-Active-Role: the app picks a role the user holds, and the header's picker switches it."""
    trainer = demo_ids.user_id(demo_ids.ACME, "trainer-03")
    admin = tokens.user_token(demo_ids.ORG_ADMIN)
    roles = {"roles": ["trainer", "learner"]}
    status, _, body = http_json(stack.url, admin, "PUT", f"/v1/users/{trainer}/roles", roles)
    assert status == 200, body
    token = sign_in(chrome, stack.url, "acme:trainer-03")
    assert css(chrome, "[data-dashboard]")[0].get_attribute("data-dashboard") == "learner"  # the first role held
    picker = Select(css(chrome, "#role")[0])
    assert sorted(o.get_attribute("value") or "" for o in picker.options) == ["learner", "trainer"]
    picker.select_by_value("trainer")
    wait(chrome, lambda d: css(d, '[data-dashboard="trainer"]'))
    assert chrome.execute_script("return sessionStorage.getItem('ms8.role')") == "trainer"
    table = loaded(chrome, "learners")
    cohort = api(stack.url, token, "/v1/learners", role="trainer")["items"]
    assert {r.get_attribute("data-user") for r in css(table, "tbody tr[data-user]")} == {x["userId"] for x in cohort}


# --- the deployed sign-in: authorization code with PKCE -----------------------------------------


def test_sign_in_with_authorization_code_and_pkce(stack: RunningGateway, idp: Provider, chrome: WebDriver) -> None:
    chrome.get(f"{idp.url}/app/config.json")
    chrome.execute_script("sessionStorage.clear()")
    chrome.get_log("browser")
    chrome.get(f"{idp.url}/app/")
    wait(chrome, lambda d: css(d, '[data-page="signin"] button.primary'))[0].click()
    headline = loaded(chrome, "headline")  # the dashboard, its API calls cross-origin with the token
    assert len(idp.exchanges) == 1
    exchange = idp.exchanges[0]
    # A fresh verifier of 43..128 characters whose S256 challenge the token endpoint checked.
    assert 43 <= len(exchange["code_verifier"]) <= 128
    assert exchange["redirect_uri"] == f"{idp.url}/app/"
    token = chrome.execute_script("return sessionStorage.getItem('ms8.token')")
    assert token == idp.issued[0]
    assert urlsplit(chrome.current_url).query == "", "the code is removed from the address bar"
    me = api(stack.url, token, "/v1/me")
    assert me["userId"] == str(demo_ids.user_id(demo_ids.ACME, "learner-03"))
    assert css(chrome, "#session .who")[0].text == me["name"]
    assert len(css(headline, ".tile[data-metric]")) == 4
    no_page_errors(chrome)

    # Coming back with a code this tab did not ask for (a forged or replayed answer) signs no one in.
    chrome.execute_script("sessionStorage.clear()")
    chrome.get(f"{idp.url}/app/?code=forged&state=not-ours")
    problem = wait(chrome, lambda d: (el := css(d, '[data-page="signin"] [role="alert"]')) and el[0])
    assert "does not match" in problem.text
    assert chrome.execute_script("return sessionStorage.getItem('ms8.token')") is None
    assert len(idp.exchanges) == 1  # the app did not even try the code
