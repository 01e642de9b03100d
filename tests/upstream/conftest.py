"""Fixtures for FireFly-Cloud's own integration tests (`tests/integration/` in its
repository), run against `firefly-local` by `scripts/upstream-tests`.

FireFly's conftest signs a real Cognito user in. This one gives its test files everything
FireFly's gives them, by name: its own constants and helpers are loaded from the checkout
under test (`FIREFLY_UPSTREAM_CONFTEST`; their code stays theirs, nothing is copied), with
the sign-in replaced by firefly-local's development issuer: a signed-in user with an email,
and the same user in `super_users`. Every URL is this machine's.

With FIREFLY_COGNITO_USER_POOL_ID set (scripts/upstream-tests sets it: a pool in moto's
Cognito, which firefly-local's authorizer trusts), FireFly's own sign-in runs instead,
unchanged: its fixtures sign its CI user in with AdminInitiateAuth and put it in
`super_users` for the session."""
import importlib.util
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


def _auth_session_headers():
    """FireFly's helper for calls its fixtures make themselves (setup, teardown)."""
    return {"Authorization": f"Bearer {token()}"}


@pytest.fixture(scope="session")
def api_url():
    return os.environ["FIREFLY_API_URL"]


@pytest.fixture(scope="session")
def ui_url():
    # The console's origin, which firefly-local serves CORS for (--cors-origin).
    return os.environ["FIREFLY_FMC_URL"]


COGNITO = bool(os.environ.get("FIREFLY_COGNITO_USER_POOL_ID"))

if COGNITO:
    @pytest.fixture(scope="session", autouse=True)
    def plain_token_first(request):
        """A Cognito token carries the groups of the moment it was issued: the plain one is
        issued before FireFly's super_auth_headers puts its user in super_users, whichever
        file asks first (as FireFly's CI runs test_auth.py first)."""
        request.getfixturevalue("auth_headers")
else:
    @pytest.fixture(scope="session")
    def auth_headers():
        return {"Authorization": f"Bearer {token()}"}

    @pytest.fixture(scope="session")
    def super_auth_headers():
        return {"Authorization": f"Bearer {token('--groups', 'super_users')}"}

    @pytest.fixture(scope="session")
    def super_auth_with_dynamo(super_auth_headers):
        return super_auth_headers


# FireFly's conftest, from the checkout: its helpers call its own module's globals, so the
# sign-in is replaced there too.
_spec = importlib.util.spec_from_file_location(
    "firefly_upstream_conftest", os.environ["FIREFLY_UPSTREAM_CONFTEST"])
upstream = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(upstream)
if not COGNITO:
    upstream._auth_session_headers = _auth_session_headers
    upstream._FIXTURE_AUTH = None
for _name, _value in vars(upstream).items():
    if not _name.startswith("__") and _name not in globals():
        globals()[_name] = _value
