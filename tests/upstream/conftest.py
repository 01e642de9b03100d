"""Fixtures for FireFly-Cloud's own integration tests (`tests/integration/test_devices.py`
and `test_health.py` in its repository), run against `firefly-local` by
`scripts/upstream-tests`. Their conftest signs a real Cognito user in; this one asks
firefly-local's development issuer for the same kinds of token: a signed-in user with an
email, and the same user in `super_users`."""
import os
import subprocess

import pytest

BIN = os.environ["FIREFLY_LOCAL_BIN"]
KEY_FILE = os.environ["FIREFLY_LOCAL_KEY_FILE"]


def token(*extra):
    out = subprocess.run(
        [BIN, "token", "--sub", "ci-user", "--email", "ci-user@example.com",
         "--key-file", KEY_FILE, *extra],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


@pytest.fixture(scope="session")
def api_url():
    return os.environ["FIREFLY_API_URL"]


@pytest.fixture(scope="session")
def auth_headers():
    return {"Authorization": f"Bearer {token()}"}


@pytest.fixture(scope="session")
def super_auth_headers():
    return {"Authorization": f"Bearer {token('--groups', 'super_users')}"}


@pytest.fixture(scope="session")
def super_auth_with_dynamo(super_auth_headers):
    return super_auth_headers
