"""Fixtures for the deployment tests: moto's server on 127.0.0.1 as CloudFormation and
CloudWatch Logs, the prerequisite stacks created there (or left out), and a recording
stand-in for `sam` on PATH."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REGION = "eu-west-1"

PREREQUISITES = {
    "firefly-api-gateway": {"ApiId": "abc123def4", "AuthorizerId": "jwt7x2"},
    "firefly-shared-layer": {
        "SharedLayerArn": "arn:aws:lambda:eu-west-1:123456789012:layer:firefly-shared:7",
        "AppConfigExtensionLayerArn": "arn:aws:lambda:eu-west-1:434848589818:layer:AWS-AppConfig-Extension-Arm64:207",
    },
    "firefly-dynamodb-registration-keys": {"TableName": "firefly-registration-keys"},
    "firefly-dynamodb-devices": {"DevicesTableName": "firefly-devices"},
    "firefly-dynamodb-firmware": {"FireflyFirmwareTableName": "firefly-firmware"},
    # FireFly's templates/s3-device-backups.yaml: the bucket's name is the deployer's.
    "firefly-s3-device-backups": {"BucketName": "acme-firefly-device-backups"},
    # templates/s3-firmware.yaml: the private firmware bucket, whose notifications invoke
    # the S3 functions.
    "firefly-s3-firmware": {"BucketName": "acme-firefly-firmware"},
    # templates/s3-firmware-public.yaml and cloudfront-firmware.yaml: where released files
    # live, and the distribution in front of them.
    "firefly-s3-firmware-public": {"BucketName": "acme-firefly-firmware-public"},
    "firefly-cloudfront-firmware": {"DistributionId": "E2QWRUHAPOMQZL", "DistributionDomain": "d111111abcdef8.cloudfront.net",
                                    "FirmwareDomain": "firmware.example.com"},
    # templates/dynamodb-users.yaml and cognito.yaml: the invitations, and the user pool
    # whose pre-sign-up trigger is ours.
    "firefly-dynamodb-users": {"UsersTableName": "firefly-users"},
    "firefly-cognito": {"UserPoolId": "eu-west-1_AbCdEfGhI", "UserPoolClientId": "3n4b5urk1ft4fl3mg5e62d9ado"},
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto():
    port = free_port()
    proc = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.05)  # polling a server's readiness, not waiting for time to pass
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture()
def aws(moto, tmp_path):
    """A clean moto, the environment that points the aws CLI at it, and boto3 clients."""
    urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/reset", method="POST"))
    env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": moto,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "SAM_RECORD": str(tmp_path / "sam.jsonl"),
        "SAM_BUILD_DIR": str(tmp_path / "build"),
    }
    # What `sam build` leaves: one executable bootstrap per function.
    built = tmp_path / "build" / "RegistrationKeysPostFunction"
    built.mkdir(parents=True)
    (built / "bootstrap").write_bytes(b"\x7fELF")
    (built / "bootstrap").chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sam = bin_dir / "sam"
    sam.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "with open(os.environ['SAM_RECORD'], 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    sam.chmod(0o755)
    kw = dict(endpoint_url=moto, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    return {
        "env": env,
        "cfn": boto3.client("cloudformation", **kw),
        "logs": boto3.client("logs", **kw),
        "sam_calls": lambda: [json.loads(l) for l in Path(env["SAM_RECORD"]).read_text().splitlines()]
        if Path(env["SAM_RECORD"]).exists()
        else [],
    }


def create_stack(cfn, name, outputs):
    """A stack with the given outputs (moto needs at least one resource it knows)."""
    template = {
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": name}}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))


def run(script, env, *args):
    return subprocess.run(
        [str(ROOT / "scripts" / "deploy" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
