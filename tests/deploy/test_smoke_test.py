"""run-integration-tests' smoke test against a stand-in API on 127.0.0.1."""
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conftest import ROOT


def serve(answer):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            status, headers, body = answer(self.headers.get("Authorization"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def good(auth):
    if auth != "Bearer token-1":
        return 401, {"Content-Type": "application/problem+json"}, b"{}"
    body = json.dumps({"registrationKey": "7KQ2MX", "expiresAt": "2026-11-26T22:43:11Z", "expiresIn": 1800})
    return 201, {"Content-Type": "application/json", "Cache-Control": "no-store"}, body.encode()


def smoke(server):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy" / "smoke_test.py")],
        env={"PATH": "/usr/bin:/bin", "FIREFLY_API_BASE_URL": f"http://127.0.0.1:{server.server_port}/",
             "FIREFLY_ID_TOKEN": "token-1", "NO_PROXY": "*"},
        capture_output=True, text=True, timeout=60,
    )


def test_passes_against_a_correct_api_and_never_prints_the_key():
    server = serve(good)
    try:
        result = smoke(server)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stdout
    assert "passed" in result.stdout
    assert "7KQ2MX" not in result.stdout + result.stderr


@pytest.mark.parametrize("broken", [
    lambda auth: (500, {}, b"{}"),
    lambda auth: good(auth) if auth else (201, {}, b"{}"),
    lambda auth: (201, {"Cache-Control": "no-store"}, b'{"registrationKey":"ILLOU0","expiresAt":"x","expiresIn":1}') if auth else (401, {}, b"{}"),
])
def test_fails_against_a_broken_api(broken):
    server = serve(broken)
    try:
        result = smoke(server)
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert "::error::" in result.stdout
