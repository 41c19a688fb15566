"""The six Lambdas: runtime, architecture, logs, one shared environment, code assets, least-privilege roles."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from exporter_infra import names
from exporter_infra.bundling import source_hash
from tests.infra.conftest import Synth
from tests.infra.support import joined, resources

VENDOR_FACING = {names.REQUEST_REPORT, names.CHECK_REPORT, names.DOWNLOAD_REPORT}


def _functions(pipeline: Template) -> dict[str, dict[str, Any]]:
    """Functions by state name (from the handler string, not the logical id)."""
    by_handler = {handler: state for state, handler in names.HANDLERS.items()}
    return {
        by_handler[fn["Properties"]["Handler"]]: fn
        for fn in resources(pipeline, "AWS::Lambda::Function")
        if fn["Properties"]["Handler"] in by_handler
    }


def _statements_of_role(pipeline: Template, role: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = role["Fn::GetAtt"][0]
    return [
        statement
        for policy in resources(pipeline, "AWS::IAM::Policy")
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_one_function_per_task_state(pipeline: Template) -> None:
    assert set(_functions(pipeline)) == set(names.HANDLERS)


def test_functions_are_arm64_python312_json_logged_and_traced(pipeline: Template) -> None:
    for fn in _functions(pipeline).values():
        props = fn["Properties"]
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == "python3.12"
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props["TracingConfig"] == {"Mode": "Active"}


def test_functions_share_one_environment_without_secrets(pipeline: Template) -> None:
    environments = {json.dumps(fn["Properties"]["Environment"], sort_keys=True)
                    for fn in _functions(pipeline).values()}
    assert len(environments) == 1, "the local runner needs one identical environment for all functions"
    variables = json.loads(environments.pop())["Variables"]
    assert set(variables) == {names.ENV_RAW_BUCKET, names.ENV_CURATED_BUCKET, names.ENV_LEDGER_TABLE,
                              names.ENV_ALERT_TOPIC_ARN, "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"}
    assert not any("secret" in key.lower() or "token" in key.lower() for key in variables)


def test_write_parquet_has_its_own_code_asset(pipeline: Template) -> None:
    keys = {state: fn["Properties"]["Code"]["S3Key"] for state, fn in _functions(pipeline).items()}
    parquet = keys.pop(names.WRITE_PARQUET)
    assert len(set(keys.values())) == 1
    assert parquet not in keys.values()


def test_asset_hash_depends_on_the_requirements_file() -> None:
    assert source_hash("requirements.txt") != source_hash("requirements-parquet.txt")


def test_each_function_has_its_own_role_without_managed_policies(pipeline: Template) -> None:
    roles = [fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in _functions(pipeline).values()]
    assert len(set(roles)) == len(roles)
    all_roles = pipeline.find_resources("AWS::IAM::Role")
    for role_id in roles:
        assert "ManagedPolicyArns" not in all_roles[role_id]["Properties"]


def test_functions_write_only_to_their_own_log_group(pipeline: Template) -> None:
    for state, fn in _functions(pipeline).items():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]
        logs = [s for s in _statements_of_role(pipeline, fn["Properties"]["Role"])
                if any(str(a).startswith("logs:") for a in _list(s["Action"]))]
        assert logs, state
        for statement in logs:
            assert set(_list(statement["Action"])) == {"logs:CreateLogStream", "logs:PutLogEvents"}
            assert statement["Resource"] == {"Fn::GetAtt": [group["Ref"], "Arn"]}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_only_vendor_facing_functions_read_secrets_and_only_the_exports_secrets(synth: Synth) -> None:
    expected = sorted(f"arn:{{AWS::Partition}}:secretsmanager:{{AWS::Region}}:{{AWS::AccountId}}:secret:{name}-??????"
                      for name in {e.secret_name for e in synth.config.exports.exports})
    for state, fn in _functions(synth.pipeline).items():
        statements = [s for s in _statements_of_role(synth.pipeline, fn["Properties"]["Role"])
                      if any(str(a).startswith("secretsmanager:") for a in _list(s["Action"]))]
        if state not in VENDOR_FACING:
            assert statements == [], state
            continue
        (statement,) = statements
        assert statement["Action"] == "secretsmanager:GetSecretValue"
        assert sorted(joined(r) for r in _list(statement["Resource"])) == expected


@pytest.mark.parametrize(("state", "prefixes"), [
    (names.DOWNLOAD_REPORT, {"raw/*"}),
    (names.WRITE_PARQUET, {"raw/*", "curated/*"}),
    (names.PLAN_RUN, set()),
    (names.REQUEST_REPORT, set()),
    (names.CHECK_REPORT, set()),
    (names.RECORD_FAILURE, set()),
])
def test_object_access_is_limited_to_the_step_and_its_prefixes(synth: Synth, state: str, prefixes: set[str]) -> None:
    fn = _functions(synth.pipeline)[state]
    objects = set()
    for statement in _statements_of_role(synth.pipeline, fn["Properties"]["Role"]):
        if any(str(a).startswith("s3:") for a in _list(statement["Action"])):
            for resource in _list(statement["Resource"]):
                text = joined(resource)
                if "/" in text.split("}")[-1]:
                    objects.add(text.split("}/", 1)[1])
    assert objects == prefixes


def test_bundles_install_aarch64_wheels_for_the_lambda_python(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from exporter_infra.bundling import FUNCTIONS_DIR, PipLocalBundling

    command = PipLocalBundling(FUNCTIONS_DIR / "requirements-parquet.txt").install_command(str(tmp_path))
    text = " ".join(command)
    assert "aarch64" in text and "3.12" in text and ":all:" in text
    assert str(tmp_path) in command and str(FUNCTIONS_DIR / "requirements-parquet.txt") in command
