#!/usr/bin/env python3
"""run-integration-tests: a smoke test of the live API, both functions.

Signs in a test user with Cognito (InitiateAuth, USER_PASSWORD_AUTH: tokens expire within a
day, so one is minted per run), then: POST /registration-keys with the token (201, a
well-formed key, no-store) and without (401 with WWW-Authenticate: Bearer); DELETE of that
key (204), and again (404). The key is revoked before the run ends and is never printed.

Configuration (all required; a missing one fails the run and names what to set):
  FIREFLY_API_BASE_URL      variable, e.g. https://abc123def4.execute-api.eu-west-1.amazonaws.com
  FIREFLY_COGNITO_CLIENT_ID variable, the user pool app client (no secret, USER_PASSWORD_AUTH on)
  FIREFLY_COGNITO_REGION    variable, the user pool's region
  FIREFLY_TEST_USERNAME     secret, a test user of that pool
  FIREFLY_TEST_PASSWORD     secret, its password
FIREFLY_COGNITO_ENDPOINT overrides Cognito's endpoint (the tests point it at moto).
"""
import json
import os
import re
import sys
import urllib.error
import urllib.request

KEY = re.compile(r"^[0-9A-HJKMNP-TV-Z]{6}$")
REQUIRED = {
    "FIREFLY_API_BASE_URL": "repository variable",
    "FIREFLY_COGNITO_CLIENT_ID": "repository variable",
    "FIREFLY_COGNITO_REGION": "repository variable",
    "FIREFLY_TEST_USERNAME": "repository secret",
    "FIREFLY_TEST_PASSWORD": "repository secret",
}


def call(method, url, token=None, body=None, headers=None):
    req = urllib.request.Request(url, data=body if body is not None else b"", method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def sign_in(env):
    """An ID token for the test user (its `aud` is the app client, as the authorizer expects)."""
    region = env["FIREFLY_COGNITO_REGION"]
    endpoint = env.get("FIREFLY_COGNITO_ENDPOINT") or f"https://cognito-idp.{region}.amazonaws.com/"
    body = json.dumps({
        "AuthFlow": "USER_PASSWORD_AUTH",
        "ClientId": env["FIREFLY_COGNITO_CLIENT_ID"],
        "AuthParameters": {"USERNAME": env["FIREFLY_TEST_USERNAME"], "PASSWORD": env["FIREFLY_TEST_PASSWORD"]},
    }).encode()
    status, _, answer = call("POST", endpoint, body=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
    })
    if status != 200:
        kind = ""
        try:
            kind = json.loads(answer).get("__type", "")
        except ValueError:
            pass
        raise RuntimeError(f"Cognito sign-in of the test user failed: HTTP {status} {kind}".strip())
    result = json.loads(answer).get("AuthenticationResult") or {}
    if "IdToken" not in result:
        raise RuntimeError("Cognito answered without an IdToken (a challenge? set the test user's password as permanent)")
    return result["IdToken"]


def main(env=os.environ):
    missing = [f"{name} ({kind})" for name, kind in REQUIRED.items() if not env.get(name)]
    if missing:
        print(f"::error::run-integration-tests is not configured; set {', '.join(missing)}")
        return 1
    try:
        token = sign_in(env)
    except (RuntimeError, OSError) as err:
        print(f"::error::{err}")
        return 1
    base = env["FIREFLY_API_BASE_URL"].rstrip("/")
    url = f"{base}/registration-keys"
    failures = []

    status, headers, body = call("POST", url, token)
    key = None
    if status != 201:
        failures.append(f"POST {url} with a token answered {status}, expected 201")
    else:
        doc = json.loads(body)
        key = str(doc.get("registrationKey", ""))
        if not KEY.match(key):
            failures.append("registrationKey is not 6 Crockford base-32 characters")
            key = None
        if not isinstance(doc.get("expiresIn"), int) or doc["expiresIn"] <= 0:
            failures.append(f"expiresIn is {doc.get('expiresIn')!r}")
        if not str(doc.get("expiresAt", "")).endswith("Z"):
            failures.append(f"expiresAt is {doc.get('expiresAt')!r}")
        if headers.get("cache-control") != "no-store":
            failures.append("Cache-Control is not no-store")

    status, headers, _ = call("POST", url)
    if status != 401:
        failures.append(f"POST {url} without a token answered {status}, expected 401")

    if key:
        status, headers, _ = call("DELETE", f"{url}/{key.lower()}", token)
        if status != 204:
            failures.append(f"DELETE of the minted key answered {status}, expected 204")
        status, _, _ = call("DELETE", f"{url}/{key}", token)
        if status != 404:
            failures.append(f"a second DELETE of the key answered {status}, expected 404")

    for f in failures:
        print(f"::error::{f}")
    if not failures:
        print(f"run-integration-tests: {url} passed (201 with a key, 401 without a token, revoked with 204, then 404)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
