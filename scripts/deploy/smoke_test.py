#!/usr/bin/env python3
"""run-integration-tests: a smoke test of the live POST /registration-keys.

Needs FIREFLY_API_BASE_URL (e.g. https://abc123def4.execute-api.eu-west-1.amazonaws.com)
and FIREFLY_ID_TOKEN (a Cognito token of a test user). Without them it says it is
skipped and exits 0, so it can run anywhere. The minted key is never printed.
"""
import json
import os
import re
import sys
import urllib.error
import urllib.request

KEY = re.compile(r"^[0-9A-HJKMNP-TV-Z]{6}$")


def post(url, token=None):
    req = urllib.request.Request(url, data=b"", method="POST")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def main():
    base = os.environ.get("FIREFLY_API_BASE_URL", "").rstrip("/")
    token = os.environ.get("FIREFLY_ID_TOKEN", "")
    if not base or not token:
        print("run-integration-tests: skipped: set FIREFLY_API_BASE_URL and FIREFLY_ID_TOKEN to run it")
        return 0
    url = f"{base}/registration-keys"
    failures = []

    status, headers, body = post(url, token)
    headers = {k.lower(): v for k, v in headers.items()}
    if status != 201:
        failures.append(f"POST {url} with a token answered {status}, expected 201")
    else:
        doc = json.loads(body)
        if not KEY.match(str(doc.get("registrationKey", ""))):
            failures.append("registrationKey is not 6 Crockford base-32 characters")
        if not isinstance(doc.get("expiresIn"), int) or doc["expiresIn"] <= 0:
            failures.append(f"expiresIn is {doc.get('expiresIn')!r}")
        if not str(doc.get("expiresAt", "")).endswith("Z"):
            failures.append(f"expiresAt is {doc.get('expiresAt')!r}")
        if headers.get("cache-control") != "no-store":
            failures.append("Cache-Control is not no-store")

    status, _, _ = post(url)
    if status != 401:
        failures.append(f"POST {url} without a token answered {status}, expected 401")

    for f in failures:
        print(f"::error::{f}")
    if not failures:
        print(f"run-integration-tests: POST {url} passed (201 with a key, 401 without a token)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
