"""The handoff console in a real headless Chromium against the real server (``scripts/serve.py``, the
session's shared ``lg_server``, with the bundled demo tokens).

A customer's turn is handed off through the SDK; a human agent opens ``/console``, signs in with the
bundled demo agent token, sees the ticket, replies and presses Send; the SDK then confirms the thread is
idle and its last message is the reply. Customer text carrying markup must stay text (XSS).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.langgraph_server import Server

REPO = Path(__file__).resolve().parents[2]
DEMO_TOKENS = REPO / "src" / "r1agent" / "data" / "demo_tokens.json"
CHROMIUM = os.environ.get("R1AGENT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("R1AGENT_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT_S = 60

pytestmark = pytest.mark.slow


def _require(ok: bool, reason: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI must have it")
        pytest.skip(reason)


def demo_token(role: str) -> str | None:
    """The bundled demo token for a role (the file the server uses when R1AGENT_AUTH_TOKENS is unset)."""
    if not DEMO_TOKENS.is_file():
        return None
    tokens: dict[str, dict[str, str]] = json.loads(DEMO_TOKENS.read_text())
    return next((token for token, who in tokens.items() if who.get("role") == role), None)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="module")
def server(lg_server: Server) -> str:
    return lg_server.url


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    """The bundled demo tokens the server uses when R1AGENT_AUTH_TOKENS is unset, by role."""
    found = {role: demo_token(role) for role in ("agent", "customer")}
    assert all(found.values()), f"{DEMO_TOKENS} lacks a human agent or a customer token"
    return {role: str(token) for role, token in found.items()}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _require(False, "selenium is not installed (pip install -e '.[dev]')")

    _require(Path(CHROMIUM).is_file() or shutil.which("chromium") is not None, "chromium is not installed")
    _require(Path(CHROMEDRIVER).is_file() or shutil.which("chromedriver") is not None, "chromedriver is missing")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).is_file() else str(shutil.which("chromium"))
    # A container has no user namespaces for the sandbox and a small /dev/shm.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).is_file() else str(shutil.which("chromedriver"))
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _handoff(url: str, token: str | None, text: str) -> tuple[str, dict[str, Any]]:
    from langgraph_sdk import get_client

    async def scenario() -> tuple[str, dict[str, Any]]:
        client = get_client(url=url, headers=bearer(token))
        thread = await client.threads.create()
        turn = {"messages": [{"role": "user", "content": text}]}
        out = await client.runs.wait(thread["thread_id"], "r1agent", input=turn)
        assert isinstance(out, dict)
        return thread["thread_id"], out

    return asyncio.run(scenario())


def _thread(url: str, token: str | None, thread_id: str) -> dict[str, Any]:
    from langgraph_sdk import get_client

    async def scenario() -> dict[str, Any]:
        return dict(await get_client(url=url, headers=bearer(token)).threads.get(thread_id))

    return asyncio.run(scenario())


def _wait(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition, message=f"timed out waiting for {what}")


def _error_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "error")
    return "" if box.get_attribute("hidden") is not None else str(box.text)


def _sign_in(driver: Any, token: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.ID, "token-save").click()


def test_console_is_public_with_strict_headers(server: str) -> None:
    with urllib.request.urlopen(f"{server}/console", timeout=10) as response:
        page = response.read().decode()
        csp = response.headers["Content-Security-Policy"]
    assert "Handoff console" in page
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    with urllib.request.urlopen(f"{server}/console/config.json", timeout=10) as response:
        settings = json.load(response)
    assert settings["assistant_id"] == "r1agent"
    # Only the page's own files are served: not the module next to them, not a path out of the folder
    # (that one matches no console route and falls through to the API, which wants a token).
    for path, codes in (("console.py", {404}), ("..%2Fconsole.py", {401, 404})):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server}/console/static/{path}", timeout=10)
        assert refused.value.code in codes


def test_agent_answers_a_handoff_in_the_browser(server: str, browser: Any, tokens: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    customer, agent = tokens["customer"], tokens["agent"]
    question = "I want to talk to a human <img src=x onerror=\"document.title='pwned'\"> <b>now</b>"
    thread_id, out = _handoff(server, customer, question)
    assert out["handoff"] is not None, out["messages"][-1]
    ticket = out["handoff"]["ticket_id"]

    browser.get(f"{server}/console")
    _wait(browser, lambda d: d.execute_script("return document.readyState") == "complete", "the page")
    title = browser.title
    # No token yet: the list call is refused and the page says so in its alert region.
    _wait(browser, lambda d: "401" in _error_text(d), "the 401 message")
    assert browser.find_element(By.ID, "error").get_attribute("role") == "alert"
    _sign_in(browser, "not-a-real-token")
    _wait(browser, lambda d: "401" in _error_text(d) and "token" in _error_text(d), "the bad-token message")
    _sign_in(browser, agent)

    card_css = f'#handoffs article[data-ticket-id="{ticket}"]'
    card = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, card_css), f"ticket {ticket}")
    assert _error_text(browser) == ""
    assert card.get_attribute("data-thread-id") == thread_id
    text = card.text
    assert f"Ticket {ticket}" in text
    assert "asked for a person" in text  # reason
    assert "%" in card.find_element(By.CSS_SELECTOR, ".facts").text  # confidence
    assert card.find_element(By.CSS_SELECTOR, ".summary").text.strip()
    # The customer's markup is shown as text and never becomes elements or runs.
    customer_lines = [li.text for li in card.find_elements(By.CSS_SELECTOR, ".conversation .customer p")]
    assert question in customer_lines
    assert card.find_elements(By.CSS_SELECTOR, "img, b") == []
    assert browser.title == title != "pwned"

    # The reply box is labelled (accessible name) and the draft can be copied into it.
    reply = card.find_element(By.CSS_SELECTOR, "textarea")
    label = browser.find_element(By.CSS_SELECTOR, f'label[for="{reply.get_attribute("id")}"]')
    assert "Reply to the customer" in label.text
    answer = "Hi, Sam here from the support team: I can help you with that right away."
    reply.send_keys(answer)
    card.find_element(By.CSS_SELECTOR, "button.send").click()

    done_css = f'#resolved article[data-ticket-id="{ticket}"][data-status="resolved"]'
    done = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, done_css), "the resolved card")
    assert done.find_element(By.CSS_SELECTOR, ".last-message").text == answer
    assert _error_text(browser) == ""

    # The API agrees: the thread resumed, is idle, and the customer got the reply.
    thread = _thread(server, agent, thread_id)
    assert thread["status"] == "idle"
    assert thread["values"]["messages"][-1]["content"] == answer
    assert thread["values"]["handoff"]["status"] == "resolved"

    # A refresh no longer lists it as open.
    browser.find_element(By.ID, "refresh").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, card_css) == [], "the open card to go")


def test_console_reports_a_network_failure_and_recovers(server: str, browser: Any, tokens: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/console")
    _sign_in(browser, tokens["agent"])
    _wait(browser, lambda d: d.find_element(By.ID, "last-refresh").text.startswith("Updated"), "a first refresh")
    browser.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    try:
        browser.find_element(By.ID, "refresh").click()
        _wait(browser, lambda d: "Cannot reach the server" in _error_text(d), "the network error")
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})
    browser.find_element(By.ID, "refresh").click()
    _wait(browser, lambda d: _error_text(d) == "", "the error to clear")
