"""template.yaml against routes/ and the deployment pages: for each function's stack, the
resources that stack creates (those whose condition is "this stack"), their names, routes,
IAM and logs."""
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
POST = "firefly-func-api-registration-keys-post"
DELETE = "firefly-func-api-registration-keys-delete"


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) as {"Ref": ...} maps."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template():
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)


@pytest.fixture(scope="module")
def routes():
    manifests = (json.loads(p.read_text()) for p in sorted((ROOT / "routes").glob("*.json")))
    # routes/ also holds functions.json and openapi.json; an entry's manifest (a route's, or
    # an S3 function's trigger) names its function.
    return [m for m in manifests if "function" in m]


FUNCTIONS = json.loads((ROOT / "routes" / "functions.json").read_text())["functions"]


def test_every_function_of_the_route_manifests_is_in_the_table(routes):
    assert sorted(FUNCTIONS) == sorted({r["function"] for r in routes})
    assert {POST, DELETE} <= set(FUNCTIONS)


def evaluate(template, name, params):
    """Every condition's value in stack `name` with parameter values `params` (the rest at
    their defaults)."""
    values = {k: v.get("Default") for k, v in template["Parameters"].items()}
    values.update(params)
    values["AWS::StackName"] = name
    conditions = template["Conditions"]

    def ev(expr):
        if isinstance(expr, dict):
            (op, arg), = expr.items()
            if op == "Fn::Equals":
                return resolve(arg[0]) == resolve(arg[1])
            if op == "Fn::And":
                return all(ev(a) for a in arg)
            if op == "Fn::Not":
                return not ev(arg[0])
            if op in ("Condition", "Fn::Condition"):
                return ev(conditions[arg])
        raise AssertionError(f"unexpected condition {expr}")

    def resolve(v):
        return values[v["Ref"]] if isinstance(v, dict) else v

    return {c: ev(e) for c, e in conditions.items()}


def stack(template, name, **params):
    """The resources (by logical id) and outputs that stack `name` creates, with template
    parameters `params`: those whose condition holds there."""
    truth = evaluate(template, name, params)
    resources = {}
    for logical, r in template["Resources"].items():
        assert "Condition" in r, f"{logical} has no condition: every stack would create it"
        if truth[r["Condition"]]:
            resources[logical] = r
    outputs = {k: o for k, o in template["Outputs"].items() if truth[o["Condition"]]}
    return resources, outputs


def resolve_ifs(value, truth):
    """`Fn::If` resolved with the stack's conditions (AWS::NoValue drops the item)."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            cond, yes, no = value["Fn::If"]
            return resolve_ifs(yes if truth[cond] else no, truth)
        out = {k: resolve_ifs(v, truth) for k, v in value.items()}
        return {k: v for k, v in out.items() if v != {"Ref": "AWS::NoValue"}}
    if isinstance(value, list):
        out = [resolve_ifs(v, truth) for v in value]
        return [v for v in out if v != {"Ref": "AWS::NoValue"}]
    return value


def of(resources, kind):
    return {k: r for k, r in resources.items() if r["Type"] == kind}


def the(resources, kind):
    found = of(resources, kind)
    assert len(found) == 1, f"expected one {kind}, found {list(found)}"
    return next(iter(found.items()))


def test_a_stack_of_another_name_creates_nothing(template):
    resources, outputs = stack(template, "firefly-func-api-something-else")
    assert resources == {} and outputs == {}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_function_matches_the_page_and_the_design(template, routes, function):
    resources, _ = stack(template, function)
    resources = resolve_ifs(resources, evaluate(template, function, {}))
    logical, fn = the(resources, "AWS::Serverless::Function")
    assert logical == FUNCTIONS[function]["logicalId"]
    p = fn["Properties"]
    assert p["FunctionName"] == function
    assert p["Runtime"] == "provided.al2023"
    assert p["Architectures"] == ["arm64"]
    assert p["Handler"] == "bootstrap"
    assert p["CodeUri"] == "."
    assert fn["Metadata"] == {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": "bootstrap"}}
    assert p["Layers"] == [{"Ref": "SharedLayerArn"}, {"Ref": "AppConfigExtensionLayerArn"}]
    assert p["LoggingConfig"]["LogFormat"] == "JSON"
    assert "Policies" not in p, "SAM would create a second role policy"
    role_id, _ = the(resources, "AWS::IAM::Role")
    assert p["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}
    env = p["Environment"]["Variables"]
    mine = [r for r in routes if r["function"] == function]
    # FireFly's names: DYNAMODB_<TABLE>_TABLE_NAME and APP_CONFIG_ENV.
    if any("firefly-registration-keys" in str(r["iam"]) for r in mine):
        assert env["DYNAMODB_REGISTRATION_KEYS_TABLE_NAME"] == "firefly-registration-keys"
    if any(a.startswith("appconfig:") for r in mine for g in r["iam"] for a in g["actions"]):
        assert env["APP_CONFIG_ENV"] == {"Ref": "AppConfigEnvironment"}
    # Exactly the environment its routes declare, and the metrics namespace: nothing another
    # function needs.
    declared = {k for r in routes if r["function"] == function for k in r["environment"]}
    assert set(env) == declared | {"FIREFLY_METRICS_NAMESPACE"}
    assert env["FIREFLY_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    # Active tracing only when asked for.
    assert p["Tracing"] == "PassThrough"
    if FUNCTIONS[function]["kind"] == "s3":
        # FireFly's own sizing for its S3 functions: a ZIP checked within 30 s and 128 MB.
        assert (p["Timeout"], p["MemorySize"]) == (30, 128)
    elif FUNCTIONS[function]["kind"] == "cognito":
        # FireFly's 5 s and 128 MB: Cognito waits 5 s for a trigger.
        assert (p["Timeout"], p["MemorySize"]) == (5, 128)
    elif function == "firefly-func-api-firmware-status-patch":
        # FireFly's 60 s: a release writes every file of a firmware, and completes or undoes
        # that work whether or not API Gateway (30 s) still waits.
        assert (p["Timeout"], p["MemorySize"]) == (60, 256)
    elif function.startswith("firefly-func-api-appconfig-"):
        # FireFly's 30 s: the page's listing reads every application, and API Gateway
        # waits 30 s at most.
        assert p["Timeout"] == 30
    else:
        # The DynamoDB client gives up after 3 s; the function must outlive that to answer 503.
        assert 4 <= p["Timeout"] <= 10


def test_every_function_ships_the_same_artifact(template):
    fns = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert len(fns) == len(FUNCTIONS) >= 2
    builds = {json.dumps([f["Properties"]["CodeUri"], f["Metadata"], f["Properties"]["Runtime"],
                          f["Properties"]["Architectures"]]) for f in fns}
    assert len(builds) == 1, "sam build would build more than one artifact"


def test_parameters_are_the_four_lookups_plus_appconfig_names(template):
    params = template["Parameters"]
    for name in ["SharedLayerArn", "AppConfigExtensionLayerArn"]:
        assert "Default" not in params[name], f"{name} must come from the stack look-up"
    # Every API function's deploy looks ApiId up and refuses to go without it
    # (scripts/deploy/deploy); a function S3 invokes takes none, hence the empty default.
    assert params["ApiId"]["Default"] == ""
    assert re.fullmatch(params["ApiId"]["AllowedPattern"], "")
    # Only a function with a JWT route takes (and looks up) the authorizer.
    assert params["AuthorizerId"]["Default"] == ""
    assert params["AppConfigEnvironment"]["Default"] == "default"
    required = {k for k, v in params.items() if "Default" not in v}
    assert required == {"SharedLayerArn", "AppConfigExtensionLayerArn"}
    # Observability switches default to the page's stack: no tracing, no alarms.
    assert params["ActiveTracing"]["Default"] == "false"
    assert params["Alarms"]["Default"] == "false"
    assert params["MetricsNamespace"]["Default"] == "Firefly"


def granted_by(resources, truth=None):
    resources = resolve_ifs(resources, truth or {"TracingOn": False, "HasAlarmTopic": False, "HasReservedConcurrency": False, "HasAppConfigReadArn": False})
    iam = {k: r for k, r in resources.items() if r["Type"].startswith("AWS::IAM::")}
    assert len(iam) == 1, f"only one IAM resource expected, found {list(iam)}"
    role = next(iter(iam.values()))["Properties"]
    assert "ManagedPolicyArns" not in role and "PermissionsBoundary" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert len(role["Policies"]) == 1
    granted = {}
    for st in role["Policies"][0]["PolicyDocument"]["Statement"]:
        assert st["Effect"] == "Allow"
        assert set(st) <= {"Sid", "Effect", "Action", "Resource"}, "no NotAction/NotResource/Condition tricks"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        for a in actions:
            assert "*" not in a, f"wildcard action {a}"
            if a not in granted:
                granted[a] = st["Resource"]
                continue
            # The same action on another resource (s3:ListBucket on two buckets): both
            # listed; never the same grant twice.
            before = granted[a] if isinstance(granted[a], list) else [granted[a]]
            assert st["Resource"] not in before, f"{a} granted twice on {st['Resource']}"
            granted[a] = before + [st["Resource"]]
    return role, granted


BUCKET_LEVEL = {"s3:ListBucket", "s3:ListBucketVersions"}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_bucket_actions_go_on_the_bucket_and_object_actions_on_its_objects(template, function):
    # s3:ListBucket on `bucket/*` grants nothing (a missing key would read as AccessDenied),
    # and GetObject on the bucket's ARN grants nothing either: each on its own resource.
    _, granted = granted_by(stack(template, function)[0])
    for action, resources in granted.items():
        resources = resources if isinstance(resources, list) else [resources]
        subs = [r["Fn::Sub"] for r in resources if isinstance(r, dict) and "Fn::Sub" in r]
        if action.startswith("s3:"):
            assert len(subs) == len(resources), (action, resources)
            for arn in subs:
                assert re.fullmatch(r"arn:\$\{AWS::Partition\}:s3:::\$\{[A-Za-z]+\}(/([a-z]+/)?\*)?", arn), arn
                assert arn.endswith("/*") == (action not in BUCKET_LEVEL), (action, arn)
        # FireFly's templates narrow three functions to the ZIPs they act on.
        narrowed = {"firefly-func-api-firmware-status-patch": ("s3:GetObject", ["processed/*"]),
                    "firefly-func-api-firmware-delete": ("s3:DeleteObject", ["processed/*", "errors/*"]),
                    "firefly-func-api-firmware-download-get": ("s3:GetObject", ["processed/*", "errors/*"])}
        if narrowed.get(function, ("",))[0] == action:
            private = [a for a in subs if a.startswith("arn:${AWS::Partition}:s3:::${FirmwareBucketName}")]
            keys = narrowed[function][1]
            assert private == [f"arn:${{AWS::Partition}}:s3:::${{FirmwareBucketName}}/{k}" for k in keys], subs
        if action.startswith("cloudfront:"):
            assert subs == ["arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${CloudFrontDistributionId}"], resources


TABLE_ARN = {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/firefly-registration-keys"}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_role_grants_exactly_the_routes_actions_and_its_own_log_writes(template, routes, function):
    resources, _ = stack(template, function)
    role, granted = granted_by(resources)
    assert role["RoleName"] == f"{function}-role"
    log_group_id, _ = the(resources, "AWS::Logs::LogGroup")
    mine = [r for r in routes if r["function"] == function]
    wanted = {a for r in mine for g in r["iam"] for a in g["actions"]}
    assert set(granted) == wanted | {"logs:CreateLogStream", "logs:PutLogEvents"}
    for a in ["logs:CreateLogStream", "logs:PutLogEvents"]:
        assert granted[a] == {"Fn::GetAtt": [log_group_id, "Arn"]}


def test_the_post_role_is_the_page_to_the_letter(template):
    _, granted = granted_by(stack(template, POST)[0])
    assert granted == {
        "dynamodb:PutItem": TABLE_ARN,
        "appconfig:StartConfigurationSession": "*",
        "appconfig:GetLatestConfiguration": "*",
        "logs:CreateLogStream": {"Fn::GetAtt": ["RegistrationKeysPostLogGroup", "Arn"]},
        "logs:PutLogEvents": {"Fn::GetAtt": ["RegistrationKeysPostLogGroup", "Arn"]},
    }


def test_an_operator_can_narrow_the_appconfig_read_grant(template):
    # FireFly's console creates each application at run time, so the grant is "*" by
    # default (above); the AppConfigReadArn parameter narrows it once the IDs exist.
    params = template["Parameters"]
    assert params["AppConfigReadArn"]["Default"] == ""
    truth = {"TracingOn": False, "HasAlarmTopic": False, "HasReservedConcurrency": False, "HasAppConfigReadArn": True}
    _, granted = granted_by(stack(template, POST)[0], truth)
    assert granted["appconfig:StartConfigurationSession"] == {"Ref": "AppConfigReadArn"}
    assert granted["appconfig:GetLatestConfiguration"] == {"Ref": "AppConfigReadArn"}
    assert granted["dynamodb:PutItem"] == TABLE_ARN
    pattern = re.compile(params["AppConfigReadArn"]["AllowedPattern"])
    assert pattern.match("arn:aws:appconfig:eu-west-1:123456789012:application/abc1234/environment/def5678/configuration/*")
    assert pattern.match("")
    assert not pattern.match("*") and not pattern.match("arn:aws:s3:::bucket")


def test_the_delete_role_may_only_delete_keys(template):
    _, granted = granted_by(stack(template, DELETE)[0])
    assert granted == {
        "dynamodb:DeleteItem": TABLE_ARN,
        "appconfig:StartConfigurationSession": "*",
        "appconfig:GetLatestConfiguration": "*",
        "logs:CreateLogStream": {"Fn::GetAtt": ["RegistrationKeysDeleteLogGroup", "Arn"]},
        "logs:PutLogEvents": {"Fn::GetAtt": ["RegistrationKeysDeleteLogGroup", "Arn"]},
    }


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_log_group_name_and_retention(template, function):
    resources, _ = stack(template, function)
    logical, lg = the(resources, "AWS::Logs::LogGroup")
    assert lg["Properties"]["LogGroupName"] == f"/aws/lambda/{function}" == FUNCTIONS[function]["logGroup"]
    assert lg["Properties"]["RetentionInDays"] == 30
    _, fn = the(resources, "AWS::Serverless::Function")
    assert fn["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": logical}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_route_of_this_function_is_wired_with_its_authorization(template, routes, function):
    resources, _ = stack(template, function)
    mine = [r for r in routes if r["function"] == function]
    assert mine, "routes/ has no entry for this function"
    api_routes = of(resources, "AWS::ApiGatewayV2::Route")
    if FUNCTIONS[function]["kind"] == "s3":
        # No API parts: S3 may invoke it, from its bucket, in this account only.
        assert api_routes == {} and of(resources, "AWS::ApiGatewayV2::Integration") == {}
        fn_id, _ = the(resources, "AWS::Serverless::Function")
        _, permission = the(resources, "AWS::Lambda::Permission")
        p = permission["Properties"]
        bucket = mine[0]["notification"]["bucketParameter"]
        assert p["Principal"] == "s3.amazonaws.com"
        assert p["FunctionName"] == {"Ref": fn_id}
        assert p["SourceArn"] == {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{{bucket}}}"}
        assert p["SourceAccount"] == {"Ref": "AWS::AccountId"}
        return
    if FUNCTIONS[function]["kind"] == "cognito":
        # No API parts: Cognito may invoke it, from its user pool, in this account only.
        assert api_routes == {} and of(resources, "AWS::ApiGatewayV2::Integration") == {}
        fn_id, _ = the(resources, "AWS::Serverless::Function")
        _, permission = the(resources, "AWS::Lambda::Permission")
        p = permission["Properties"]
        pool = mine[0]["trigger"]["poolParameter"]
        assert mine[0]["trigger"]["lambdaConfig"] == "PreSignUp"
        assert p["Principal"] == "cognito-idp.amazonaws.com"
        assert p["FunctionName"] == {"Ref": fn_id}
        assert p["SourceArn"] == {"Fn::Sub": f"arn:${{AWS::Partition}}:cognito-idp:${{AWS::Region}}:${{AWS::AccountId}}:userpool/${{{pool}}}"}
        assert p["SourceAccount"] == {"Ref": "AWS::AccountId"}
        return
    assert sorted(r["Properties"]["RouteKey"] for r in api_routes.values()) == sorted(r["routeKey"] for r in mine)
    integration_name, integration = the(resources, "AWS::ApiGatewayV2::Integration")
    fn_id, _ = the(resources, "AWS::Serverless::Function")
    ip = integration["Properties"]
    assert ip["IntegrationType"] == "AWS_PROXY"
    assert ip["PayloadFormatVersion"] == "2.0"
    assert ip["ApiId"] == {"Ref": "ApiId"}
    assert ip["IntegrationUri"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    for entry in mine:
        route = next(r["Properties"] for r in api_routes.values() if r["Properties"]["RouteKey"] == entry["routeKey"])
        assert route["ApiId"] == {"Ref": "ApiId"}
        assert route["AuthorizationType"] == entry["authorization"]
        if entry["authorization"] == "JWT":
            assert route["AuthorizerId"] == {"Ref": "AuthorizerId"}
        else:
            assert entry["authorization"] == "NONE"
            assert "AuthorizerId" not in route
        assert route["Target"] == {"Fn::Sub": f"integrations/${{{integration_name}}}"}


def _route_keys():
    manifests = (json.loads(p.read_text()) for p in sorted((ROOT / "routes").glob("*.json")))
    return [(m["function"], m["routeKey"]) for m in manifests if "routeKey" in m]


@pytest.mark.parametrize("function, route_key", _route_keys())
def test_invoke_permission_is_scoped_to_the_api_and_route(template, function, route_key):
    method, route_path = route_key.split(" ", 1)
    # API Gateway's source ARN: each {param} of the route is one * segment.
    path = "/".join("*" if seg.startswith("{") else seg for seg in route_path.strip("/").split("/"))
    resources, _ = stack(template, function)
    perms = of(resources, "AWS::Lambda::Permission")
    expected = f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{ApiId}}/*/{method}/{path}"
    perm = next((p for p in perms.values() if p["Properties"]["SourceArn"] == {"Fn::Sub": expected}), None)
    assert perm is not None, f"no permission for {route_key}: {perms}"
    fn_id, _ = the(resources, "AWS::Serverless::Function")
    p = perm["Properties"]
    assert p["Principal"] == "apigateway.amazonaws.com"
    assert p["Action"] == "lambda:InvokeFunction"
    assert p["FunctionName"] == {"Ref": fn_id}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_outputs_and_samconfig(template, function):
    _, outputs = stack(template, function)
    prefix = FUNCTIONS[function]["logicalId"].removesuffix("Function")
    wanted = ["FunctionArn", "FunctionName", "RoleArn", "LogGroupName"]
    if FUNCTIONS[function]["kind"] == "api":
        wanted.append("IntegrationId")
    else:
        # The bucket stack's notification can import it.
        assert outputs[f"{prefix}FunctionArn"]["Export"]["Name"] == f"{function}-arn"
    assert {f"{prefix}{k}" for k in wanted} == set(outputs)
    sam = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert sam[function]["deploy"]["parameters"]["stack_name"] == function
    assert sam[function]["delete"]["parameters"]["stack_name"] == function
    assert sam[function]["deploy"]["parameters"]["capabilities"] == "CAPABILITY_NAMED_IAM"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_active_tracing_is_a_switch_that_also_grants_the_xray_writes(template, function):
    resources, _ = stack(template, function, ActiveTracing="true")
    truth = evaluate(template, function, {"ActiveTracing": "true"})
    _, granted = granted_by(resources, truth)
    assert granted["xray:PutTraceSegments"] == "*"
    assert granted["xray:PutTelemetryRecords"] == "*"
    fn = resolve_ifs(resources, truth)[FUNCTIONS[function]["logicalId"]]
    assert fn["Properties"]["Tracing"] == "Active"
    _, granted = granted_by(stack(template, function)[0])
    assert not any(a.startswith("xray:") for a in granted)


def alarms(resources):
    return {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_alarms_exist_only_when_asked_for_and_watch_each_route_and_the_function(template, routes, function):
    assert alarms(stack(template, function)[0]) == {}
    resources, _ = stack(template, function, Alarms="true")
    found = alarms(resources)
    logical = FUNCTIONS[function]["logicalId"]
    manifests = [r for r in routes if r["function"] == function]
    metric_alarms = [(m["routeKey"], a) for m in manifests for a in m.get("alarms", [])]
    routes = FUNCTIONS[function]["routes"]
    if FUNCTIONS[function]["kind"] == "s3":
        # Throttles, duration, and its failed invocations (Lambda drops them after two retries).
        assert {a["MetricName"] for a in found.values()} == {"Throttles", "Duration", "Errors"}
        return
    assert len(found) == 2 + len(routes) + len(metric_alarms)
    # Each route's own metric alarms (refused registrations: someone guessing keys).
    for route_key, wanted in metric_alarms:
        alarm = next(a for a in found.values() if a.get("MetricName") == wanted["metric"])
        assert alarm["Namespace"] == {"Ref": "MetricsNamespace"}
        assert alarm["Dimensions"] == [{"Name": "function", "Value": function},
                                       {"Name": "route", "Value": route_key}]
        assert alarm["Threshold"] == wanted["threshold"]
    throttles = next(a for a in found.values() if a.get("MetricName") == "Throttles")
    assert throttles["Namespace"] == "AWS/Lambda"
    assert throttles["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": logical}}]
    assert throttles["Threshold"] == 1
    duration = next(a for a in found.values() if a.get("MetricName") == "Duration")
    assert duration["ExtendedStatistic"] == "p99"
    timeout = resources[logical]["Properties"]["Timeout"]
    kind = FUNCTIONS[function]["kind"]
    assert timeout == (60 if function == "firefly-func-api-firmware-status-patch" else 5 if kind == "cognito"
                       else 30 if function.startswith("firefly-func-api-appconfig-") else 6)
    assert duration["Threshold"] == timeout * 800  # 80% of the timeout
    rates = [a for a in found.values() if "Metrics" in a]
    assert len(rates) == len(routes)
    for rate, route in zip(rates, routes):
        stats = {m["Id"]: m for m in rate["Metrics"]}
        for mid, name in [("errors", "Errors5xx"), ("requests", "Requests")]:
            metric = stats[mid]["MetricStat"]["Metric"]
            assert metric["Namespace"] == {"Ref": "MetricsNamespace"}
            assert metric["MetricName"] == name
            assert metric["Dimensions"] == [{"Name": "function", "Value": function},
                                            {"Name": "route", "Value": route}]
        assert "100 * errors / requests" in stats["rate"]["Expression"]
        assert rate["Threshold"] == 5
    for a in found.values():
        assert a["TreatMissingData"] == "notBreaching"
        assert a["AlarmName"].startswith(function)
    # Notifications only to a topic the operator names.
    truth = evaluate(template, function, {"Alarms": "true"})
    assert all("AlarmActions" not in a for a in alarms(resolve_ifs(resources, truth)).values())
    truth = evaluate(template, function, {"Alarms": "true", "AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops"})
    for a in alarms(resolve_ifs(resources, truth)).values():
        assert a["AlarmActions"] == [{"Ref": "AlarmTopicArn"}]


def test_refused_registrations_have_an_opt_in_alarm(routes):
    register = next(r for r in routes if r.get("routeKey") == "POST /devices/register")
    assert [a["metric"] for a in register["alarms"]] == ["RegistrationsRefused"]


def test_alarms_of_one_function_never_appear_in_anothers_stack(template):
    post, _ = stack(template, POST, Alarms="true")
    delete, _ = stack(template, DELETE, Alarms="true")
    assert not set(alarms(post)) & set(alarms(delete))


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_reserved_concurrency_is_a_parameter_absent_by_default(template, function):
    logical = FUNCTIONS[function]["logicalId"]
    resources, _ = stack(template, function)
    fn = resolve_ifs(resources, evaluate(template, function, {}))[logical]
    assert "ReservedConcurrentExecutions" not in fn["Properties"]
    fn = resolve_ifs(resources, evaluate(template, function, {"ReservedConcurrency": 10}))[logical]
    assert fn["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
