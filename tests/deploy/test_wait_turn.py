"""scripts/deploy/wait-turn against a stand-in of GitHub's Actions API on 127.0.0.1: the
runs that change AWS take turns, oldest first, and none is dropped (GitHub's concurrency
groups keep one pending run and cancel the one before it)."""
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "deploy" / "wait-turn"
REPO = "brentio/firefly-api"


def run(id, workflow, minute, status="in_progress", attempt_minute=None):
    started = f"2026-12-01T10:{attempt_minute if attempt_minute is not None else minute:02d}:00Z"
    return {
        "id": id,
        "path": f".github/workflows/{workflow}",
        "status": status,
        "created_at": f"2026-12-01T10:{minute:02d}:00Z",
        "run_started_at": started,
        "display_title": f"{workflow} {id}",
        "html_url": f"https://github.com/{REPO}/actions/runs/{id}",
    }


class FakeGitHub:
    """Runs by id; `finish_after[id] = n` completes a run once n polls have listed it
    unfinished. `fail` answers the next requests with the given statuses."""

    def __init__(self, runs):
        self.runs = {r["id"]: r for r in runs}
        self.finish_after = {}
        self.polls = 0
        self.fail = []
        self.tokens = set()

    def answer(self, path, query):
        """(status, body, headers)"""
        if self.fail:
            failure = self.fail.pop(0)
            status, headers = failure if isinstance(failure, tuple) else (failure, {})
            return status, {"message": "stand-in failure"}, headers
        return self.ok(path, query) + ({},)

    def ok(self, path, query):
        if path.startswith(f"/repos/{REPO}/actions/runs/"):
            run_id = int(path.rsplit("/", 1)[1])
            return (200, self.runs[run_id]) if run_id in self.runs else (404, {"message": "Not Found"})
        if path == f"/repos/{REPO}/actions/runs":
            status, page = query["status"][0], int(query.get("page", ["1"])[0])
            assert query["per_page"] == ["100"]
            if status == "queued" and page == 1:
                # A new poll: runs due to finish do so now.
                self.polls += 1
                for run_id, n in self.finish_after.items():
                    if self.polls > n:
                        self.runs[run_id]["status"] = "completed"
            matching = sorted((r for r in self.runs.values() if r["status"] == status), key=lambda r: r["id"])
            return 200, {"total_count": len(matching), "workflow_runs": matching[(page - 1) * 100:page * 100]}
        return 404, {"message": "Not Found"}


@pytest.fixture()
def github():
    servers = []

    def start(runs):
        fake = FakeGitHub(runs)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.tokens.add(self.headers.get("Authorization"))
                url = urlparse(self.path)
                status, body, headers = fake.answer(url.path, parse_qs(url.query))
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        fake.url = f"http://127.0.0.1:{server.server_address[1]}"
        return fake

    yield start
    for server in servers:
        server.shutdown()


def wait_turn(fake, me, **extra):
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_API_URL": fake.url,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_RUN_ID": str(me),
        "GITHUB_TOKEN": "ghs_test",
        # Polls follow each other at once: the stand-in decides when runs finish.
        "FIREFLY_TURN_POLL_SECONDS": "0",
        **extra,
    }
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_the_first_run_in_order_goes_at_once(github):
    fake = github([
        run(10, "deploy.yml", 10),
        run(12, "delete.yml", 12),           # started after this run: it waits for us
        run(9, "ci.yml", 5),                 # not a deployment
        run(8, "release.yml", 1, status="completed"),
    ])
    result = wait_turn(fake, 10)
    assert result.returncode == 0, result.stderr
    assert "run 10's turn" in result.stdout
    assert fake.polls == 1
    assert fake.tokens == {"Bearer ghs_test"}


def test_a_queued_delete_is_never_dropped_by_a_later_deploy(github):
    """A deploy runs, a delete of the same function queues behind it, then a deploy queues
    behind both: with one concurrency group GitHub would cancel the pending delete. Here
    each waits for the ones before it, and each gets its turn, in order."""
    runs = [
        run(19, "deploy.yml", 19),
        run(21, "delete.yml", 21, status="queued"),
        run(22, "deploy.yml", 22, status="waiting"),
    ]
    fake = github(runs)
    fake.finish_after = {19: 2}
    delete = wait_turn(fake, 21)
    assert delete.returncode == 0, delete.stderr
    assert fake.polls == 3  # listed the running deploy twice, then found it finished
    assert "1 earlier run(s) first" in delete.stdout
    assert "deploy.yml run 19" in delete.stdout
    assert "delete.yml" not in delete.stdout.split("first:")[1].split("turn")[0]

    # The later deploy waits for the delete too, which is still there to run.
    fake.polls, fake.finish_after = 0, {21: 1}
    later = wait_turn(fake, 22)
    assert later.returncode == 0, later.stderr
    assert "delete.yml run 21" in later.stdout
    assert fake.runs[21]["status"] == "completed" and fake.polls == 2


def test_a_release_waits_for_every_earlier_deploy_and_delete(github):
    fake = github([
        run(30, "deploy.yml", 30),
        dict(run(31, "delete.yml", 31, status="queued"), path=".github/workflows/delete.yml@refs/heads/main"),
        run(33, "release.yml", 33, status="in_progress"),
    ])
    fake.finish_after = {30: 1, 31: 3}
    result = wait_turn(fake, 33)
    assert result.returncode == 0, result.stderr
    assert "2 earlier run(s) first" in result.stdout
    assert "1 earlier run(s) first" in result.stdout  # the list is printed again when it changes
    assert fake.polls == 4


def test_a_rerun_of_an_old_run_waits_for_what_started_since(github):
    fake = github([
        run(5, "deploy.yml", 1, attempt_minute=40),  # created first, re-run at 10:40
        run(30, "release.yml", 30),
    ])
    fake.finish_after = {30: 1}
    result = wait_turn(fake, 5)
    assert result.returncode == 0, result.stderr
    assert "release.yml run 30" in result.stdout
    assert fake.polls == 2


def test_earlier_runs_are_found_on_every_page(github):
    busy = [run(100 + i, "ci.yml", 0) for i in range(150)]
    fake = github(busy + [run(300, "deploy.yml", 1, status="in_progress"), run(301, "deploy.yml", 2)])
    fake.finish_after = {300: 1}
    # 152 in_progress runs: the earlier deploy is on the second page.
    assert sorted(r["id"] for r in fake.runs.values())[-2] == 300
    result = wait_turn(fake, 301)
    assert result.returncode == 0, result.stderr
    assert "deploy.yml run 300" in result.stdout


def test_the_wait_has_a_limit_and_says_what_it_waits_for(github):
    fake = github([run(40, "deploy.yml", 40), run(41, "deploy.yml", 41, status="queued")])
    result = wait_turn(fake, 41, FIREFLY_TURN_MAX_WAIT_SECONDS="0")
    assert result.returncode == 1
    assert "still waiting after 0 s for 40" in result.stderr
    assert "run 41's turn" not in result.stdout


def test_a_token_without_actions_read_fails_and_names_the_permission(github):
    fake = github([run(50, "deploy.yml", 50)])
    fake.fail = [403]
    result = wait_turn(fake, 50)
    assert result.returncode == 1
    assert "actions: read" in result.stderr


def test_a_passing_api_failure_is_retried_and_a_lasting_one_stops_the_run(github):
    fake = github([run(60, "delete.yml", 60)])
    fake.fail = [502, 503]
    result = wait_turn(fake, 60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("trying again") == 2

    fake.fail = [502, 502, 502]
    result = wait_turn(fake, 60)
    assert result.returncode == 1
    assert "not deploying out of turn" in result.stderr


def test_githubs_rate_limits_are_waited_out_not_counted_as_failures(github):
    """A token allows 1,000 requests an hour per repository: several waiting runs can hit
    it. GitHub's 403 with no requests remaining, its 429 and its retry-after are waits."""
    import time
    fake = github([run(70, "deploy.yml", 70)])
    past = str(int(time.time()) - 5)  # the limit already reset: no time needs to pass
    fake.fail = [(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": past}),
                 (429, {"retry-after": "0"}), (403, {"retry-after": "0"}),
                 (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": past})]
    result = wait_turn(fake, 70)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("rate limit") == 4
    assert "actions: read" not in result.stderr
