#!/usr/bin/env python3
"""The status page of `rrun app serve` in headless Chromium (driven by
tests/app_serve.rs, the_page_in_a_browser). Expects two apps: svweb
(running, printing what appears in its /tmp/say) and svdone (exited).
Exits non-zero with one line saying what was wrong."""

import argparse
import json
import subprocess
import sys
import time
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 60


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def browser(width, height, javascript=True):
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        o.add_argument(a)
    if not javascript:
        o.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def ls(a):
    out = subprocess.run([a.rrun, "app", "--app-root", a.root, "ls", "--all",
                          "--format", "json"], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return {x["name"]: x for x in json.loads(out)}


def wait(d, what, cond):
    try:
        return WebDriverWait(d, WAIT, poll_frequency=0.2).until(lambda _: cond())
    except Exception:
        fail("timed out waiting for " + what)


def field(d, app, f):
    return d.find_element(By.CSS_SELECTOR, f"#app-{app} [data-f={f}]").text.strip()


def main():
    p = argparse.ArgumentParser()
    for x in ("--url", "--token", "--rrun", "--root", "--runtime-root", "--screenshot"):
        p.add_argument(x, required=True)
    a = p.parse_args()

    # Reading with scripting off: both apps, with their states.
    d = browser(1200, 900, javascript=False)
    try:
        d.get(a.url)
        if field(d, "svweb", "state") != "running" or field(d, "svdone", "state") != "exited":
            fail("without JavaScript the page does not show both apps' states")
    finally:
        d.quit()

    d = browser(1200, 1000)
    try:
        d.get(a.url + "#token=" + a.token)
        # 1. Both apps, the right states.
        if field(d, "svweb", "state") != "running":
            fail("svweb is not shown running: " + field(d, "svweb", "state"))
        if field(d, "svdone", "state") != "exited":
            fail("svdone is not shown exited: " + field(d, "svdone", "state"))
        wait(d, "the last health check's output",
             lambda: "all-good" in d.find_element(By.CSS_SELECTOR, "#app-svweb").text)
        if field(d, "svweb", "health") != "healthy":
            fail("svweb is not shown healthy: " + field(d, "svweb", "health"))
        if "#token" in d.current_url:
            fail("the token stays in the address bar")

        # 2. A line printed after the page opened shows up in its log panel.
        marker = "marker-" + uuid.uuid4().hex
        subprocess.run([a.rrun, "--root", a.runtime_root, "exec", "svweb", "sh", "-c",
                        f"echo {marker} > /tmp/say.new && mv /tmp/say.new /tmp/say"],
                       check=True, timeout=60)
        log = d.find_element(By.CSS_SELECTOR, "#app-svweb pre.log")
        wait(d, "the new log line in the page", lambda: marker in log.text)

        # 3. A request without the token is refused and changes nothing.
        before = ls(a)
        status = d.execute_async_script(
            "const done = arguments[0];"
            "fetch('/api/apps/svdone/start', {method: 'POST'})"
            ".then(r => done(r.status), e => done(String(e)));")
        if status != 401:
            fail(f"a start without the token got {status}, not 401")
        status = d.execute_async_script(
            "const done = arguments[0];"
            "fetch('/api/apps/svweb/restart', {method: 'POST', headers: {Authorization: 'Bearer wrong'}})"
            ".then(r => done(r.status), e => done(String(e)));")
        if status != 401:
            fail(f"a restart with a wrong token got {status}, not 401")
        after = ls(a)
        for n in ("svweb", "svdone"):
            for k in ("state", "pid", "restarts"):
                if before[n][k] != after[n][k]:
                    fail(f"a refused request changed {n}.{k}: {before[n][k]} -> {after[n][k]}")

        # 4. Restart from its button: `rrun app ls` counts it.
        count = before["svweb"]["restarts"]
        d.find_element(By.CSS_SELECTOR, "#app-svweb button[data-act=restart]").click()
        wait(d, "the restart to finish",
             lambda: "done" in d.find_element(By.CSS_SELECTOR, "#app-svweb .msg").text
             or "token" in d.find_element(By.CSS_SELECTOR, "#app-svweb .msg").text)
        msg = d.find_element(By.CSS_SELECTOR, "#app-svweb .msg").text
        if "done" not in msg:
            fail("the restart button says: " + msg)
        now = ls(a)["svweb"]
        if now["restarts"] != count + 1:
            fail(f"rrun app ls counts {now['restarts']} restarts, not {count + 1}")
        if now["pid"] == before["svweb"]["pid"]:
            fail("the restart left the same process")
        wait(d, "the page to show the new count",
             lambda: field(d, "svweb", "restarts") == str(count + 1))
        wait(d, "the page to show svweb running", lambda: field(d, "svweb", "state") == "running")

        # A couple of samples for the sparklines, then the picture.
        time.sleep(5)
        d.save_screenshot(a.screenshot)
    finally:
        d.quit()

    # Readable on a phone: nothing wider than the screen.
    d = browser(412, 915)
    try:
        d.get(a.url)
        wide = d.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        if wide > 0:
            fail(f"on a phone-wide screen the page is {wide}px too wide")
        d.save_screenshot(a.screenshot.replace(".png", "-phone.png"))
    finally:
        d.quit()
    print("ok")


if __name__ == "__main__":
    main()
