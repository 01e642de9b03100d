"""template.yaml against routes/ and the deployment page: names, route, IAM, logs."""
import json
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "firefly-func-api-registration-keys-post"


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
    return [json.loads(p.read_text()) for p in sorted((ROOT / "routes").glob("*.json"))]


def resources_of(template, kind):
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def the(template, kind):
    found = resources_of(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {list(found)}"
    return next(iter(found.values()))


def test_function_matches_the_page_and_the_design(template):
    fn = the(template, "AWS::Serverless::Function")
    p = fn["Properties"]
    assert p["FunctionName"] == FUNCTION
    assert p["Runtime"] == "provided.al2023"
    assert p["Architectures"] == ["arm64"]
    assert p["Handler"] == "bootstrap"
    assert p["CodeUri"] == "."
    assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert p["Layers"] == [{"Ref": "SharedLayerArn"}, {"Ref": "AppConfigExtensionLayerArn"}]
    assert p["LoggingConfig"]["LogFormat"] == "JSON"
    assert "Policies" not in p, "SAM would create a second role policy"
    assert p["Role"] == {"Fn::GetAtt": ["Role", "Arn"]}
    env = p["Environment"]["Variables"]
    assert env["REGISTRATION_KEYS_TABLE"] == "firefly-registration-keys"
    for name, param in [("FIREFLY_APPCONFIG_APPLICATION", "AppConfigApplication"),
                        ("FIREFLY_APPCONFIG_ENVIRONMENT", "AppConfigEnvironment"),
                        ("FIREFLY_APPCONFIG_PROFILE", "AppConfigProfile")]:
        assert env[name] == {"Ref": param}
    assert env["AWS_APPCONFIG_EXTENSION_PREFETCH_LIST"] == {
        "Fn::Sub": "/applications/${AppConfigApplication}/environments/${AppConfigEnvironment}/configurations/${AppConfigProfile}"
    }
    # The DynamoDB client gives up after 3 s; the function must outlive that to answer 503.
    assert 4 <= p["Timeout"] <= 10


def test_parameters_are_the_four_lookups_plus_appconfig_names(template):
    params = template["Parameters"]
    for name in ["ApiId", "AuthorizerId", "SharedLayerArn", "AppConfigExtensionLayerArn"]:
        assert "Default" not in params[name], f"{name} must come from the stack look-up"
    for name in ["AppConfigApplication", "AppConfigEnvironment", "AppConfigProfile"]:
        assert params[name].get("Default")


def test_role_grants_exactly_the_routes_actions_and_its_own_log_writes(template, routes):
    iam = {k: r for k, r in template["Resources"].items() if r["Type"].startswith("AWS::IAM::")}
    assert list(iam) == ["Role"], f"only one IAM resource expected, found {list(iam)}"
    role = iam["Role"]["Properties"]
    assert role["RoleName"] == f"{FUNCTION}-role"
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
            granted[a] = st["Resource"]
    mine = [r for r in routes if r["function"] == FUNCTION]
    wanted = {a for r in mine for a in r["iamActions"]}
    assert set(granted) == wanted | {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert granted["dynamodb:PutItem"] == {
        "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/firefly-registration-keys"
    }
    assert granted["appconfig:StartConfigurationSession"] == "*"
    assert granted["appconfig:GetLatestConfiguration"] == "*"
    assert granted["logs:PutLogEvents"] == {"Fn::GetAtt": ["LogGroup", "Arn"]}
    assert granted["logs:CreateLogStream"] == {"Fn::GetAtt": ["LogGroup", "Arn"]}


def test_log_group_name_and_retention(template):
    lg = the(template, "AWS::Logs::LogGroup")["Properties"]
    assert lg["LogGroupName"] == f"/aws/lambda/{FUNCTION}"
    assert lg["RetentionInDays"] == 30
    fn = the(template, "AWS::Serverless::Function")["Properties"]
    assert fn["LoggingConfig"]["LogGroup"] == {"Ref": "LogGroup"}


def test_every_route_of_this_function_is_wired_with_its_authorization(template, routes):
    mine = [r for r in routes if r["function"] == FUNCTION]
    assert mine, "routes/ has no entry for this function"
    api_routes = resources_of(template, "AWS::ApiGatewayV2::Route")
    assert sorted(r["Properties"]["RouteKey"] for r in api_routes.values()) == sorted(
        r["routeKey"] for r in mine
    )
    integration_name, integration = next(iter(resources_of(template, "AWS::ApiGatewayV2::Integration").items()))
    ip = integration["Properties"]
    assert ip["IntegrationType"] == "AWS_PROXY"
    assert ip["PayloadFormatVersion"] == "2.0"
    assert ip["ApiId"] == {"Ref": "ApiId"}
    assert ip["IntegrationUri"] == {"Fn::GetAtt": ["Function", "Arn"]}
    for entry in mine:
        route = next(r["Properties"] for r in api_routes.values() if r["Properties"]["RouteKey"] == entry["routeKey"])
        assert route["ApiId"] == {"Ref": "ApiId"}
        assert route["AuthorizationType"] == entry["authorization"]
        if entry["authorization"] == "JWT":
            assert route["AuthorizerId"] == {"Ref": "AuthorizerId"}
        assert route["Target"] == {"Fn::Sub": f"integrations/${{{integration_name}}}"}


def test_invoke_permission_is_scoped_to_the_api_and_route(template, routes):
    perms = resources_of(template, "AWS::Lambda::Permission")
    mine = [r for r in routes if r["function"] == FUNCTION]
    assert len(perms) == len(mine)
    for entry, perm in zip(mine, perms.values()):
        p = perm["Properties"]
        method, path = entry["routeKey"].split(" ", 1)
        assert p["Principal"] == "apigateway.amazonaws.com"
        assert p["Action"] == "lambda:InvokeFunction"
        assert p["SourceArn"] == {
            "Fn::Sub": f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{ApiId}}/*/{method}{path}"
        }


def test_outputs_and_stack_name(template):
    assert {"FunctionArn", "RouteId", "FunctionName", "LogGroupName"} <= set(template["Outputs"])
    sam = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for section in ["deploy", "delete"]:
        assert sam["default"][section]["parameters"]["stack_name"] == FUNCTION
    assert sam["default"]["deploy"]["parameters"]["capabilities"] == "CAPABILITY_NAMED_IAM"
    for script in ["lib.sh"]:
        assert f"STACK={FUNCTION}" in (ROOT / "scripts" / "deploy" / script).read_text()
