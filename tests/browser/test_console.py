"""The browser test: headless Chromium (Debian's chromium and chromium-driver) drives
tests/browser/console.html, a stand-in for FireFly's console, against firefly-local: PKCE
sign-in through the Cognito-style sign-in, then mint, list keys and list devices, on the
Firmware page list, open, release and download a build, on the Users page invite, promote
and delete, and on the App Configuration page change a function's log level, each a
cross-origin call with its CORS preflight. Bounded in time; no error in the browser console.

Run by scripts/browser (in scripts/check)."""
import functools
import http.server
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("FIREFLY_LOCAL", str(ROOT / "target" / "debug" / "firefly-local"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def page_server():
    """Serves tests/browser on 127.0.0.1 (the console's origin)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(Path(__file__).parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture()
def api(page_server, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps([{"username": "ida", "email": "ida@example.com", "groups": ["super_users"]},
                                 {"username": "joe", "email": "joe@example.com"}]))
    proc = subprocess.Popen(
        [BIN, "serve", "--port", "0", "--key-file", str(tmp_path / "dev.p8"),
         "--cors-origin", page_server, "--redirect-uri", f"{page_server}/console.html",
         "--client-id", "console-app", "--users", str(users), "--sign-in-as", "ida"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    first = proc.stderr.readline()
    match = re.search(r"serving (http://127\.0\.0\.1:\d+)", first)
    assert match, first
    s3 = None
    for line in proc.stderr:
        found = re.search(r"S3 endpoint (http://127\.0\.0\.1:\d+)", line)
        if found:
            s3 = found.group(1)
            break
    assert s3, "no S3 endpoint line"
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    # A build for the Firmware page, uploaded as FireFly's CI uploads it.
    zip_file = tmp_path / "fw.zip"
    subprocess.run([BIN, "firmware", "build", "--out", str(zip_file), "--product-hex", "0x32322304",
                    "--version", "2026.12.07"], check=True, capture_output=True)
    subprocess.run([BIN, "firmware", "upload", str(zip_file), "--s3-url", s3], check=True, capture_output=True)
    yield match.group(1)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture()
def browser():
    # Chromium's profile lives as long as the test, then goes with it.
    profile = tempfile.TemporaryDirectory(prefix="firefly-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile.name}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    profile.cleanup()


def test_the_console_signs_in_mints_lists_keys_and_devices_releases_a_firmware_invites_and_sets_a_level(page_server, api, browser):
    browser.get(f"{page_server}/console.html?api={api}")
    status = lambda d: d.find_element(By.ID, "status").text
    try:
        WebDriverWait(browser, 30).until(lambda d: status(d) == "done" or status(d).startswith("error"))
    except Exception:
        raise AssertionError(f"the page is at {status(browser)!r}: {browser.get_log('browser')}")
    assert status(browser) == "done"
    key = browser.find_element(By.ID, "minted").text
    assert re.fullmatch(r"[A-Z0-9]{6}", key), key
    assert key in browser.find_element(By.ID, "keys").text.split(",")
    assert browser.find_element(By.ID, "devices").text == "0"
    # The Firmware page: the build listed, released (three history entries), its download
    # a presigned URL of firefly-local's S3 endpoint that serves the ZIP.
    assert browser.find_element(By.ID, "firmware").text == "2026.12.07:READY_TO_TEST"
    assert browser.find_element(By.ID, "released").text == "RELEASED:3"
    expires, url = browser.find_element(By.ID, "download").text.split(" ", 1)
    assert expires == "900"
    with urllib.request.urlopen(url, timeout=10) as zip_answer:
        assert zip_answer.status == 200
        assert zip_answer.read(4) == b"PK\x03\x04"
    # The Users page: the two users, the invitation listed as INVITED, joe made super.
    assert browser.find_element(By.ID, "users").text == \
        "ida@example.com:true:CONFIRMED,joe@example.com:false:CONFIRMED"
    assert browser.find_element(By.ID, "invited").text == "INVITED:false"
    assert browser.find_element(By.ID, "promoted").text == "joe@example.com:true"
    # The App Configuration page: every function listed; the level staged as version 1,
    # deployed, and listed as deployed.
    assert int(browser.find_element(By.ID, "levels").text) >= 20
    assert browser.find_element(By.ID, "level").text == "1:COMPLETE:DEBUG:1"
    # Nothing went wrong in the page: no CORS refusal, no failed request, no script error.
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == [], errors
