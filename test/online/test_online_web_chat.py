"""The web chat page at / driven in headless Chromium (Debian's chromium + chromedriver,
through Selenium): send a message, watch the reply stream in, press stop, see the request
cancelled on the server; reasoning is shown collapsed; conversations are listed."""

from __future__ import annotations

import shutil
import time

import pytest

from llaisys.engine import SamplingParams
from test.online.fake_engine import FakeEngine
from test.online.server_support import RunningServer

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver")


def script(prompt: str, params: SamplingParams, index: int) -> str:
    if "think" in prompt:
        return "<think>Let me consider this.</think>The answer is 42."
    return "Streaming words, one byte at a time. " * 40


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER),
                              options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(cond, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def last_reply(driver) -> tuple[str, str]:
    replies = driver.find_elements(By.CSS_SELECTOR, ".msg.assistant")
    if not replies:
        return "", ""
    r = replies[-1]
    return (r.find_element(By.CSS_SELECTOR, ".content").text,
            r.find_element(By.CSS_SELECTOR, ".note").text)


def test_page_when_message_sent_and_stopped_then_text_streams_and_request_is_cancelled(
        browser):
    fake = FakeEngine(script=script, step_delay=0.03)
    with RunningServer(fake) as srv:
        browser.get(srv.url + "/")
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#model option"),
                 what="the model list")
        browser.find_element(By.ID, "input").send_keys("Tell me a long story")
        browser.find_element(By.ID, "send").click()

        first = wait_for(lambda: len(last_reply(browser)[0]) >= 5 and last_reply(browser)[0],
                         what="streamed text")
        wait_for(lambda: len(last_reply(browser)[0]) > len(first) + 5, what="more text")
        assert browser.find_element(By.ID, "stop").is_displayed()
        browser.find_element(By.ID, "stop").click()

        wait_for(lambda: last_reply(browser)[1] == "[stopped]", what="the stopped note")
        assert browser.find_element(By.ID, "status").text == "Request cancelled."
        assert not browser.find_element(By.ID, "stop").is_displayed()
        text = last_reply(browser)[0]
        assert text.startswith("Streaming words") and len(text) < 1400
        m = srv.wait_idle()
        assert m["llaisys_requests_total{finish_reason=abort}"] == 1
        assert m["llaisys_kv_cache_used_blocks"] == 0


def test_page_when_reply_has_reasoning_then_it_is_collapsed_and_conversations_listed(browser):
    with RunningServer(FakeEngine(script=script)) as srv:
        browser.get(srv.url + "/")
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#model option"),
                 what="the model list")
        browser.find_element(By.ID, "input").send_keys("think about it")
        browser.find_element(By.ID, "send").click()
        wait_for(lambda: last_reply(browser)[0] == "The answer is 42.", what="the answer")
        wait_for(lambda: browser.find_element(By.ID, "send").is_enabled(), what="idle")
        details = browser.find_element(By.CSS_SELECTOR, ".msg.assistant details.reasoning")
        assert details.get_attribute("open") is None  # collapsed
        assert details.is_displayed()
        hidden = details.find_element(By.CSS_SELECTOR, ".reasoning-text")
        assert hidden.get_attribute("textContent") == "Let me consider this."

        browser.find_element(By.ID, "new-chat").click()
        items = browser.find_elements(By.CSS_SELECTOR, "#conversations li")
        assert [i.text for i in items] == ["New conversation", "think about it"]
        assert browser.find_elements(By.CSS_SELECTOR, ".msg") == []
        items[1].click()
        wait_for(lambda: last_reply(browser)[0] == "The answer is 42.", what="old conversation")
