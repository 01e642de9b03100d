"""run-integration-tests' smoke test: a token minted from moto's Cognito (InitiateAuth, as
the live run does) against a stand-in API on 127.0.0.1 that checks it."""
import json
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import pytest

from conftest import REGION, ROOT

USER, PASSWORD = "smoke-user@example.com", "Sm0ke-Test-Passw0rd!"


@pytest.fixture()
def cognito(moto):
    urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/reset", method="POST"))
    idp = boto3.client("cognito-idp", endpoint_url=moto, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    pool = idp.create_user_pool(PoolName="firefly")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="smoke",
                                         ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])
    client_id = client["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username=USER, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username=USER, Password=PASSWORD, Permanent=True)
    return {"endpoint": moto, "client_id": client_id}


def claims(token):
    import base64
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def serve(answer):
    """A stand-in API: `answer(method, path, token_claims_or_None)` → (status, headers, body)."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def handle_one(self):
            auth = self.headers.get("Authorization") or ""
            got = claims(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
            seen.append((self.command, self.path, got))
            status, headers, body = answer(self.command, self.path, got)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_DELETE = handle_one

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.seen = seen
    return server


class Api:
    """A correct API: one key, revocable once, only for a token of the test user."""

    def __init__(self, client_id):
        self.client_id = client_id
        self.live = set()

    def __call__(self, method, path, claims):
        if not claims or claims.get("aud") != self.client_id or claims.get("token_use") != "id":
            return 401, {"Content-Type": "application/problem+json", "WWW-Authenticate": "Bearer"}, b"{}"
        if method == "POST" and path == "/registration-keys":
            self.live.add("7KQ2MX")
            body = json.dumps({"registrationKey": "7KQ2MX", "expiresAt": "2026-11-26T22:43:11Z", "expiresIn": 1800})
            return 201, {"Content-Type": "application/json", "Cache-Control": "no-store"}, body.encode()
        if method == "DELETE" and path.startswith("/registration-keys/"):
            key = path.rsplit("/", 1)[1].upper()
            if key in self.live:
                self.live.discard(key)
                return 204, {"Cache-Control": "no-store"}, b""
            return 404, {"Content-Type": "application/problem+json"}, b"{}"
        return 404, {}, b"{}"


def smoke(server, cognito, **overrides):
    env = {
        "PATH": "/usr/bin:/bin", "NO_PROXY": "*",
        "FIREFLY_API_BASE_URL": f"http://127.0.0.1:{server.server_port}/",
        "FIREFLY_COGNITO_CLIENT_ID": cognito["client_id"],
        "FIREFLY_COGNITO_REGION": REGION,
        "FIREFLY_COGNITO_ENDPOINT": cognito["endpoint"],
        "FIREFLY_TEST_USERNAME": USER,
        "FIREFLY_TEST_PASSWORD": PASSWORD,
    }
    env.update(overrides)
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "deploy" / "smoke_test.py")],
                          env=env, capture_output=True, text=True, timeout=60)


def test_signs_in_mints_checks_401_revokes_and_never_prints_the_key(cognito):
    api = Api(cognito["client_id"])
    server = serve(api)
    try:
        result = smoke(server, cognito)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout
    assert "7KQ2MX" not in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    methods = [(m, p, c is not None) for m, p, c in server.seen]
    assert methods == [
        ("POST", "/registration-keys", True),
        ("POST", "/registration-keys", False),
        ("DELETE", "/registration-keys/7kq2mx", True),
        ("DELETE", "/registration-keys/7KQ2MX", True),
    ]
    # The token is Cognito's, minted for this run, for the configured app client.
    first = server.seen[0][2]
    assert first["aud"] == cognito["client_id"] and first["cognito:username"] == USER
    assert api.live == set(), "the key was left live"


def revoke_never_works(api):
    return lambda m, p, c: (404, {}, b"{}") if m == "DELETE" else api(m, p, c)


def revoke_always_works(api):
    return lambda m, p, c: (204, {}, b"") if m == "DELETE" else api(m, p, c)


@pytest.mark.parametrize("broken", [
    lambda api: lambda m, p, c: (500, {}, b"{}"),
    lambda api: lambda m, p, c: (201, {}, b"{}"),
    lambda api: lambda m, p, c: (201, {"Cache-Control": "no-store"},
                                 b'{"registrationKey":"ILLOU0","expiresAt":"x","expiresIn":1}') if c else (401, {}, b"{}"),
    revoke_never_works,
    revoke_always_works,
])
def test_fails_against_a_broken_api(cognito, broken):
    server = serve(broken(Api(cognito["client_id"])))
    try:
        result = smoke(server, cognito)
    finally:
        server.shutdown()
    assert result.returncode == 1, result.stdout
    assert "::error::" in result.stdout


@pytest.mark.parametrize("unset", ["FIREFLY_API_BASE_URL", "FIREFLY_COGNITO_CLIENT_ID", "FIREFLY_COGNITO_REGION",
                                   "FIREFLY_TEST_USERNAME", "FIREFLY_TEST_PASSWORD"])
def test_without_configuration_the_run_fails_and_says_what_to_set(cognito, unset):
    server = serve(Api(cognito["client_id"]))
    try:
        result = smoke(server, cognito, **{unset: None})
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert "::error::run-integration-tests is not configured" in result.stdout
    assert unset in result.stdout
    assert server.seen == [], "it called the API without being configured"


def test_a_wrong_password_fails_at_sign_in(cognito):
    server = serve(Api(cognito["client_id"]))
    try:
        result = smoke(server, cognito, FIREFLY_TEST_PASSWORD="wrong-Passw0rd!")
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert "Cognito sign-in of the test user failed" in result.stdout
    assert "wrong-Passw0rd!" not in result.stdout + result.stderr
    assert server.seen == []
