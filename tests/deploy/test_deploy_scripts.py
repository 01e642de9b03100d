"""The deploy and delete scripts that the workflows call, against moto and a recording sam,
for every function in the table."""
import json
from pathlib import Path

import pytest

from conftest import PREREQUISITES, ROOT, create_stack, run

TABLE = json.loads((ROOT / "routes" / "functions.json").read_text())["functions"]
FUNCTIONS = sorted(TABLE)
# (function, table stack, workflow) for every table a function's routes use.
TABLE_USERS = [(f, stack, workflow) for f in FUNCTIONS for t in TABLE[f]["tableStacks"] for stack, workflow in [(t["stack"], t["workflow"])]]
POST = "firefly-func-api-registration-keys-post"
each_function = pytest.mark.parametrize("function", FUNCTIONS)


def overrides(function):
    """The parameters a function's deploy passes: AuthorizerId only with a JWT route, each
    bucket's name (from its stack's output) only for a function that uses it."""
    out = OVERRIDES if TABLE[function]["authorizer"] else [o for o in OVERRIDES if not o.startswith("AuthorizerId=")]
    # A function S3 invokes has no route: no API ids at all.
    if TABLE[function]["kind"] != "api":
        out = [o for o in out if not o.startswith("ApiId=")]
    for b in TABLE[function]["fromStacks"]:
        out = out + [f'{b["parameter"]}={PREREQUISITES[b["stack"]][b["output"]]}']
    for s in TABLE[function]["settings"]:
        out = out + [f'{s["parameter"]}={s["default"]}']
    d = TABLE[function]["deploy"]
    return out + [f'ReservedConcurrency={d["ReservedConcurrency"]}', f'Alarms={"true" if d["Alarms"] else "false"}']


FROM_STACK_USERS = [(f, b["stack"], b["output"], b["workflow"]) for f in FUNCTIONS for b in TABLE[f]["fromStacks"]]
PARAMETER = {(f, b["stack"]): b["parameter"] for f in FUNCTIONS for b in TABLE[f]["fromStacks"]}

OVERRIDES = [
    "ApiId=abc123def4",
    "AuthorizerId=jwt7x2",
    "SharedLayerArn=arn:aws:lambda:eu-west-1:123456789012:layer:firefly-shared:7",
    "AppConfigExtensionLayerArn=arn:aws:lambda:eu-west-1:434848589818:layer:AWS-AppConfig-Extension-Arm64:207",
]


def all_stacks(cfn, skip=(), drop_output=None):
    for name, outputs in PREREQUISITES.items():
        if name in skip:
            continue
        outputs = {k: v for k, v in outputs.items() if k != drop_output}
        create_stack(cfn, name, outputs)


@each_function
def test_deploy_looks_up_the_four_outputs_then_builds_and_deploys(aws, function):
    all_stacks(aws["cfn"])
    result = run("deploy", aws["env"], function)
    assert result.returncode == 0, result.stderr
    calls = aws["sam_calls"]()
    assert calls[0] == ["build"]
    deploy = calls[1]
    assert len(calls) == 2
    assert deploy[0] == "deploy"
    assert deploy[deploy.index("--stack-name") + 1] == function
    i = deploy.index("--parameter-overrides")
    expected = overrides(function)
    assert deploy[i + 1 : i + 1 + len(expected)] == expected
    assert deploy[i + 1 + len(expected)].startswith("--")
    assert "--no-fail-on-empty-changeset" in deploy
    assert deploy[deploy.index("--capabilities") + 1] == "CAPABILITY_NAMED_IAM"
    assert "::warning::" not in result.stderr


@each_function
def test_resolve_prints_the_overrides_and_deploy_takes_them_from_a_file(aws, tmp_path, function):
    all_stacks(aws["cfn"])
    result = run("resolve", aws["env"], function)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == overrides(function)
    params = tmp_path / "params"
    params.write_text(result.stdout)
    result = run("deploy", aws["env"], function, "--params", str(params), "--skip-build")
    assert result.returncode == 0, result.stderr
    calls = aws["sam_calls"]()
    assert len(calls) == 1 and calls[0][0] == "deploy"
    i = calls[0].index("--parameter-overrides")
    expected = overrides(function)
    assert calls[0][i + 1 : i + 1 + len(expected)] == expected


@pytest.mark.parametrize(
    "missing, workflow",
    [("firefly-api-gateway", "api-gateway"), ("firefly-shared-layer", "shared-layer")],
)
@each_function
def test_a_missing_prerequisite_stack_stops_before_sam(aws, missing, workflow, function):
    all_stacks(aws["cfn"], skip=[missing])
    if missing == "firefly-api-gateway" and TABLE[function]["kind"] != "api":
        # A function S3 invokes never looks the API up: it deploys without it.
        assert run("resolve", aws["env"], function).returncode == 0
        return
    for script in ["resolve", "deploy"]:
        result = run(script, aws["env"], function)
        assert result.returncode != 0
        assert f"::error::stack {missing} not found: deploy {workflow} first" in result.stderr
        assert aws["sam_calls"]() == []


@pytest.mark.parametrize(
    "output, stack", [("ApiId", "firefly-api-gateway"), ("AuthorizerId", "firefly-api-gateway"),
                      ("SharedLayerArn", "firefly-shared-layer"),
                      ("AppConfigExtensionLayerArn", "firefly-shared-layer")],
)
def test_a_missing_output_is_caught_and_sam_never_runs(aws, output, stack):
    all_stacks(aws["cfn"], drop_output=output)
    result = run("deploy", aws["env"], POST)
    assert result.returncode != 0
    assert f"stack {stack} has no output {output}" in result.stderr
    assert aws["sam_calls"]() == []


def test_a_function_without_jwt_routes_never_looks_up_the_authorizer(aws):
    public = [f for f in FUNCTIONS if not TABLE[f]["authorizer"]]
    assert public, "the table has a function without a JWT route (GET /health)"
    # The authorizer's output is gone: a JWT function stops, the public ones deploy.
    all_stacks(aws["cfn"], drop_output="AuthorizerId")
    for f in public:
        result = run("deploy", aws["env"], f)
        assert result.returncode == 0, result.stderr
        assert not any("AuthorizerId" in a for call in aws["sam_calls"]() for a in call)
    result = run("deploy", aws["env"], POST)
    assert result.returncode != 0
    assert "stack firefly-api-gateway has no output AuthorizerId" in result.stderr


REGISTER = "firefly-func-api-devices-register-post"


def test_the_route_table_caps_the_redeeming_function_and_turns_its_alarms_on(aws):
    # docs/security.md's arithmetic assumes both for the one route that takes a key from
    # anyone. Every other API function deploys without a cap, with alarms off; an S3
    # function's failures reach nobody but its alarms, so they are on, still uncapped.
    assert TABLE[REGISTER]["deploy"] == {"ReservedConcurrency": 5, "Alarms": True}
    others = [f for f in FUNCTIONS if f != REGISTER]
    assert any(TABLE[f]["kind"] == "s3" for f in others)
    for f in others:
        alarms = TABLE[f]["kind"] == "s3"
        assert TABLE[f]["deploy"] == {"ReservedConcurrency": -1, "Alarms": alarms}, f
    all_stacks(aws["cfn"])
    result = run("deploy", aws["env"], REGISTER)
    assert result.returncode == 0, result.stderr
    deploy = aws["sam_calls"]()[1]
    assert "ReservedConcurrency=5" in deploy and "Alarms=true" in deploy


def test_an_operator_overrides_the_settings_in_one_file(aws, tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"functions": {REGISTER: {"ReservedConcurrency": 12}, POST: {"Alarms": True}}}))
    env = dict(aws["env"], FIREFLY_DEPLOY_SETTINGS_FILE=str(settings))
    all_stacks(aws["cfn"])
    assert "ReservedConcurrency=12\nAlarms=true" in run("resolve", env, REGISTER).stdout
    assert "ReservedConcurrency=-1\nAlarms=true" in run("resolve", env, POST).stdout
    for bad in [{"Concurrency": 3}, {"ReservedConcurrency": "5"}, {"ReservedConcurrency": -2}, {"Alarms": "yes"}]:
        settings.write_text(json.dumps({"functions": {REGISTER: bad}}))
        result = run("deploy", env, REGISTER)
        assert result.returncode != 0, bad
        assert "settings.json" in result.stderr and REGISTER in result.stderr, result.stderr
        assert aws["sam_calls"]() == []
    # The committed file overrides nothing: the route table decides.
    committed = json.loads((ROOT / "scripts" / "deploy" / "settings.json").read_text())
    assert committed["functions"] == {}


def test_the_backup_and_firmware_functions_take_the_buckets_and_distribution_named_by_their_stacks():
    by_stack = {}
    for f, stack, output, workflow in FROM_STACK_USERS:
        by_stack.setdefault((stack, output, workflow), set()).add(f)
    assert by_stack == {
        ("firefly-s3-device-backups", "BucketName", "s3-device-backups"):
            {f"firefly-func-api-devices-backup-{m}" for m in ("post", "get", "delete")},
        ("firefly-s3-firmware", "BucketName", "s3-firmware"):
            {"firefly-func-s3-firmware-uploaded", "firefly-func-s3-firmware-deleted",
             "firefly-func-api-firmware-status-patch", "firefly-func-api-firmware-delete",
             "firefly-func-api-firmware-download-get"},
        # A release publishes, a revocation withdraws; the ingest replaces a released debug
        # build: public files move to revoked/ and CloudFront forgets them.
        ("firefly-s3-firmware-public", "BucketName", "s3-firmware-public"):
            {"firefly-func-s3-firmware-uploaded", "firefly-func-api-firmware-status-patch"},
        ("firefly-cloudfront-firmware", "DistributionId", "cloudfront-firmware"):
            {"firefly-func-s3-firmware-uploaded", "firefly-func-api-firmware-status-patch"},
        # OTA's URLs name the firmware domain.
        ("firefly-cloudfront-firmware", "FirmwareDomain", "cloudfront-firmware"):
            {"firefly-func-api-ota-get"},
        # The pool whose pre-sign-up trigger is ours (its permission's SourceArn), and whose
        # users the users routes manage.
        ("firefly-cognito", "UserPoolId", "cognito"):
            {"firefly-func-cognito-pre-signup"} | {f"firefly-func-api-users-{m}" for m in ("get", "post", "patch", "delete")},
    }


@pytest.mark.parametrize("function, stack, output, workflow", FROM_STACK_USERS)
def test_without_the_bucket_stack_or_its_output_nothing_deploys(aws, function, stack, output, workflow):
    # Unlike a table, the bucket's name comes from its stack: without it there is nothing
    # to give the function, so the deploy stops and names what to deploy first.
    all_stacks(aws["cfn"], skip=[stack])
    result = run("deploy", aws["env"], function)
    assert result.returncode != 0
    assert f"::error::stack {stack} not found: deploy {workflow} first" in result.stderr
    assert aws["sam_calls"]() == []


@pytest.mark.parametrize("function, stack, output, workflow", FROM_STACK_USERS)
def test_a_params_file_without_the_bucket_never_deploys(aws, tmp_path, function, stack, output, workflow):
    params = tmp_path / "params"
    parameter = PARAMETER[(function, stack)]
    params.write_text("\n".join(o for o in overrides(function) if not o.startswith(f"{parameter}=")) + "\n")
    result = run("deploy", aws["env"], function, "--params", str(params), "--skip-build")
    assert result.returncode != 0
    assert f"parameter {parameter} is missing" in result.stderr
    assert aws["sam_calls"]() == []


def test_an_incomplete_params_file_never_deploys(aws, tmp_path):
    params = tmp_path / "params"
    params.write_text("\n".join(OVERRIDES[:3] + ["AppConfigExtensionLayerArn="]) + "\n")
    result = run("deploy", aws["env"], POST, "--params", str(params))
    assert result.returncode != 0
    assert "AppConfigExtensionLayerArn is missing" in result.stderr
    assert aws["sam_calls"]() == []


@pytest.mark.parametrize("function, table_stack, workflow", TABLE_USERS)
def test_without_the_table_stack_the_function_still_deploys_with_a_warning(
    aws, function, table_stack, workflow
):
    all_stacks(aws["cfn"], skip=[table_stack])
    result = run("deploy", aws["env"], function)
    assert result.returncode == 0, result.stderr
    assert (
        f"::warning::stack {table_stack} not found: {function} will deploy"
        f" but answer 500 until {workflow} is deployed"
    ) in result.stderr
    assert "deploy" in [c[0] for c in aws["sam_calls"]()]


def test_unreachable_cloudformation_fails_without_deploying(aws):
    env = dict(aws["env"], AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1")
    result = run("deploy", env, POST)
    assert result.returncode != 0
    assert "::error::could not read stack firefly-api-gateway" in result.stderr
    assert aws["sam_calls"]() == []


@each_function
def test_delete_runs_sam_delete_then_deletes_only_its_own_log_group(aws, function):
    for f in FUNCTIONS:
        aws["logs"].create_log_group(logGroupName=f"/aws/lambda/{f}")
    result = run("delete", aws["env"], function)
    assert result.returncode == 0, result.stderr
    assert aws["sam_calls"]() == [["delete", "--stack-name", function, "--no-prompts"]]
    groups = [g["logGroupName"] for g in aws["logs"].describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]]
    assert groups == sorted(f"/aws/lambda/{f}" for f in FUNCTIONS if f != function)
    assert f"deleted log group /aws/lambda/{function}" in result.stdout


def test_delete_succeeds_when_the_log_group_is_already_gone(aws):
    result = run("delete", aws["env"], POST)
    assert result.returncode == 0, result.stderr
    assert "already gone" in result.stdout
    assert len(aws["sam_calls"]()) == 1


@pytest.mark.parametrize("script", ["resolve", "deploy", "delete"])
@pytest.mark.parametrize("args", [[], ["firefly-func-api-nope"], ["--params"]])
def test_an_unknown_or_missing_function_stops_with_the_list(aws, script, args):
    all_stacks(aws["cfn"])
    result = run(script, aws["env"], *args)
    assert result.returncode != 0
    assert "::error::" in result.stderr
    for f in FUNCTIONS:
        assert f in result.stderr
    assert aws["sam_calls"]() == []


def fake_aws(aws, stderr_text, exit_code, only_for="describe-stacks"):
    """Puts an `aws` on PATH that fails `only_for` calls with `stderr_text`, or passes the
    call to the real CLI after printing a warning on stderr."""
    real = next(p for p in aws["env"]["PATH"].split(":")[1:] if (Path(p) / "aws").exists())
    fake = Path(aws["env"]["PATH"].split(":")[0]) / "aws"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'if [[ " $* " == *" {only_for} "* && -n "{stderr_text}" ]]; then echo "{stderr_text}" >&2; exit {exit_code}; fi\n'
        'echo "WARNING: a CLI warning on stderr" >&2\n'
        f'exec "{real}/aws" "$@"\n'
    )
    fake.chmod(0o755)


def test_look_ups_keep_only_the_value_when_the_cli_warns(aws):
    all_stacks(aws["cfn"])
    fake_aws(aws, "", 0)
    result = run("resolve", aws["env"], POST)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == overrides(POST)


@pytest.mark.parametrize("text, reported", [
    ("An error occurred (AccessDenied) when calling the DescribeStacks operation: User: arn:aws:sts::1:assumed-role/deploy is not authorized to perform: cloudformation:DescribeStacks",
     "access denied (the deploy role lacks a permission)"),
    ("An error occurred (Throttling) when calling the DescribeStacks operation (reached max retries: 2): Rate exceeded",
     "throttled by AWS, try again"),
])
def test_access_denied_and_throttling_are_reported_as_such_not_as_a_missing_stack(aws, text, reported):
    all_stacks(aws["cfn"])
    fake_aws(aws, text, 254)
    result = run("deploy", aws["env"], POST)
    assert result.returncode != 0
    assert f"::error::could not read stack firefly-api-gateway for its output ApiId: {reported}" in result.stderr
    assert "not found" not in result.stderr
    assert aws["sam_calls"]() == []


@each_function
def test_a_log_group_left_outside_the_stack_stops_the_deploy_before_sam(aws, function):
    all_stacks(aws["cfn"])
    group = f"/aws/lambda/{function}"
    aws["logs"].create_log_group(logGroupName=group)
    result = run("deploy", aws["env"], function)
    assert result.returncode != 0
    assert f"::error::log group {group} already exists outside stack {function}" in result.stderr
    assert f"aws logs delete-log-group --log-group-name {group}" in result.stderr
    assert aws["sam_calls"]() == []


def post_stack_with_its_log_group(aws):
    """Every prerequisite, and POST's stack holding its own log group (as a deploy leaves
    it). Returns the group's name."""
    all_stacks(aws["cfn"])
    group = f"/aws/lambda/{POST}"
    template = {"Resources": {"RegistrationKeysPostLogGroup": {
        "Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group, "RetentionInDays": 30}}}}
    aws["cfn"].create_stack(StackName=POST, TemplateBody=json.dumps(template))
    return group


def test_the_stacks_own_log_group_is_no_obstacle(aws):
    group = post_stack_with_its_log_group(aws)
    assert aws["logs"].describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    result = run("deploy", aws["env"], POST)
    assert result.returncode == 0, result.stderr
    assert [c[0] for c in aws["sam_calls"]()] == ["build", "deploy"]


def test_a_bootstrap_without_the_execute_bit_is_never_deployed(aws, tmp_path):
    all_stacks(aws["cfn"])
    built = Path(aws["env"]["SAM_BUILD_DIR"]) / "RegistrationKeysPostFunction" / "bootstrap"
    built.chmod(0o644)
    result = run("deploy", aws["env"], POST, "--skip-build")
    assert result.returncode != 0
    assert "is not executable" in result.stderr
    assert "Runtime.InvalidEntrypoint" in result.stderr
    assert all(c[0] != "deploy" for c in aws["sam_calls"]())


def trailing_warning_aws(aws, fail_for=None, fail_text=""):
    """An `aws` on PATH that runs the real CLI, then prints a warning on stderr after its
    answer (or fails `fail_for` calls with `fail_text`)."""
    real = next(p for p in aws["env"]["PATH"].split(":")[1:] if (Path(p) / "aws").exists())
    fake = Path(aws["env"]["PATH"].split(":")[0]) / "aws"
    fail = (
        f'if [[ " $* " == *" {fail_for} "* ]]; then echo "{fail_text}" >&2; exit 254; fi\n'
        if fail_for
        else ""
    )
    fake.write_text(
        "#!/usr/bin/env bash\n"
        + fail
        + f'"{real}/aws" "$@"; code=$?\n'
        + 'echo "WARNING: a CLI warning after the answer" >&2\n'
        + "exit $code\n"
    )
    fake.chmod(0o755)


def test_a_cli_warning_after_the_answer_never_becomes_a_status_or_a_log_group(aws):
    all_stacks(aws["cfn"])
    trailing_warning_aws(aws)
    result = run("deploy", aws["env"], POST)
    assert result.returncode == 0, result.stderr
    assert [c[0] for c in aws["sam_calls"]()] == ["build", "deploy"]


def test_a_failed_stack_resources_look_up_is_reported_as_such(aws):
    post_stack_with_its_log_group(aws)
    trailing_warning_aws(
        aws, "describe-stack-resources",
        "An error occurred (AccessDenied) when calling the DescribeStackResources operation: not authorized",
    )
    result = run("deploy", aws["env"], POST)
    assert result.returncode != 0
    assert f"could not read the resources of stack {POST}: access denied" in result.stderr
    assert "outside stack" not in result.stderr
    assert all(c[0] != "deploy" for c in aws["sam_calls"]())


def test_params_without_a_file_says_so(aws):
    result = run("deploy", aws["env"], POST, "--params")
    assert result.returncode != 0
    assert "--params needs a file" in result.stderr


S3_FUNCTIONS = [f for f in FUNCTIONS if TABLE[f]["kind"] == "s3"]


@pytest.mark.parametrize("function", S3_FUNCTIONS)
def test_a_function_s3_invokes_needs_no_api_and_names_its_bucket_on_a_first_install(aws, function):
    # No API gateway stack: an S3 function never looks it up.
    all_stacks(aws["cfn"], skip=("firefly-api-gateway", "firefly-s3-firmware"))
    result = run("resolve", aws["env"], function)
    assert result.returncode != 0
    assert "firefly-s3-firmware not found" in result.stderr
    assert "firefly-api-gateway" not in result.stderr
    # A first install: the bucket stack takes the functions' ARNs, so it comes after them;
    # FireFly's variable names the bucket meanwhile, and the deploy says so.
    env = dict(aws["env"], S3_FIRMWARE_PRIVATE_BUCKET_NAME="acme-first-install")
    result = run("resolve", env, function)
    assert result.returncode == 0, result.stderr
    assert "FirmwareBucketName=acme-first-install" in result.stdout.splitlines()
    assert not any(l.startswith("ApiId=") for l in result.stdout.splitlines())
    assert "naming the bucket from S3_FIRMWARE_PRIVATE_BUCKET_NAME" in result.stderr


def test_the_pre_sign_up_trigger_needs_no_api_and_names_its_pool_on_a_first_install(aws):
    function = "firefly-func-cognito-pre-signup"
    assert TABLE[function]["kind"] == "cognito"
    all_stacks(aws["cfn"], skip=("firefly-api-gateway", "firefly-cognito"))
    result = run("resolve", aws["env"], function)
    assert result.returncode != 0
    assert "firefly-cognito not found" in result.stderr
    assert "firefly-api-gateway" not in result.stderr
    # The pool stack takes the trigger's ARN (PreSignUpLambdaArn), so on a first install
    # the function comes first, the pool named by FireFly's variable meanwhile.
    env = dict(aws["env"], COGNITO_USER_POOL_ID="eu-west-1_FirstInst")
    result = run("resolve", env, function)
    assert result.returncode == 0, result.stderr
    assert "UserPoolId=eu-west-1_FirstInst" in result.stdout.splitlines()
    assert not any(l.startswith(("ApiId=", "AuthorizerId=")) for l in result.stdout.splitlines())
    assert "naming the user pool from COGNITO_USER_POOL_ID" in result.stderr


SETTING_USERS = [f for f in FUNCTIONS if TABLE[f]["settings"]]


def test_a_deployment_setting_comes_from_the_deploying_jobs_variable_else_its_safe_default(aws):
    """ENVIRONMENT_NAME (deploy.yml passes the repository variable): the status function
    deploys with it, production when unset, and a value the template refuses stops the
    run before anything deploys."""
    assert SETTING_USERS == ["firefly-func-api-firmware-status-patch"]
    function = SETTING_USERS[0]
    all_stacks(aws["cfn"])
    assert "EnvironmentName=production" in run("resolve", aws["env"], function).stdout.splitlines()
    dev = run("resolve", dict(aws["env"], ENVIRONMENT_NAME="dev"), function)
    assert dev.returncode == 0, dev.stderr
    assert "EnvironmentName=dev" in dev.stdout.splitlines()
    bad = run("resolve", dict(aws["env"], ENVIRONMENT_NAME="prod"), function)
    assert bad.returncode != 0
    assert "ENVIRONMENT_NAME" in bad.stderr
