"""The two gates on every synth: cdk-nag (AwsSolutions) and cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from exporter_infra.app_builder import build_app
from tests.infra.conftest import Synth
from tests.infra.support import as_list, infra_config

CFN_LINT = Path(sys.executable).parent / "cfn-lint"


def test_cdk_nag_fails_the_synth_of_a_non_compliant_resource(tmp_path: Path) -> None:
    built = build_app(infra_config(), outdir=str(tmp_path))
    # No encryption setting, no TLS-only policy, no access logs: what AwsSolutions-S1/S10 exist for.
    s3.CfnBucket(built.storage, "CarelessBucket")
    with pytest.raises(RuntimeError, match="ValidationFailed") as raised:
        built.app.synth()
    assert "CarelessBucket" in str(raised.value)
    report = json.loads((tmp_path / "validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin["violations"]]
    flagged = {
        location["constructPath"]
        for violation in violations
        for location in violation["violatingConstructs"]
    }
    assert flagged == {f"{built.storage.stack_name}/CarelessBucket"}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= {v["ruleName"] for v in violations}


def test_the_app_synthesizes_with_zero_unacknowledged_findings(synth: Synth) -> None:
    # The session synth ran the AwsSolutions pack (build_app always adds it) and did not raise.
    assert (synth.outdir / "manifest.json").exists()
    assert _violations(synth.outdir) == []


def _violations(outdir: Path) -> list[object]:
    report = json.loads((outdir / "validation-report.json").read_text())
    return [v for plugin in report["pluginReports"] for v in plugin["violations"]]


def test_every_acknowledgement_is_specific_and_has_a_reason(synth: Synth) -> None:
    acknowledgements = [
        (node.node.path, entry.data)
        for node in synth.built.app.node.find_all()
        for entry in node.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    ]
    assert acknowledgements
    for path, data in acknowledgements:
        # Recorded as {"<source>::<rule id>": reason}.
        for key, reason in data.items():
            rule = key.partition("::")[2]
            assert rule.startswith("AwsSolutions-"), (path, key)
            assert len(reason) >= 40, (path, rule, reason)
            if rule.startswith("AwsSolutions-IAM5"):
                assert "[" in rule, f"IAM5 must be acknowledged finding by finding: {path}"
    # Nothing is waved through for a whole stack or the app.
    stacks = {synth.built.storage.node.path, synth.built.pipeline.node.path, ""}
    assert not [path for path, _ in acknowledgements if path in stacks]


def test_cfn_lint_reports_no_errors_on_either_template(synth: Synth) -> None:
    paths = [str(p) for p in synth.template_paths]
    assert all(Path(p).exists() for p in paths)
    # W3005: CDK emits a DependsOn that a GetAtt already implies (harmless, and not ours to change).
    result = subprocess.run([str(CFN_LINT), "--format", "json", "--ignore-checks", "W3005", "--", *paths],
                            capture_output=True, text=True, check=False)
    findings = json.loads(result.stdout or "[]")
    assert [f for f in findings if f["Level"] == "Error"] == [], findings
    assert findings == [], findings
    assert result.returncode == 0, result.stderr


def _nag_form(value: object) -> str:
    """A policy string as cdk-nag prints it in IAM5 finding ids: ``<LogicalId.Arn>``, ``<Ref>``, export names."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_nag_form(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return _nag_form(value["Fn::ImportValue"])
    return json.dumps(value)


def test_every_wildcard_acknowledgement_names_a_grant_that_exists(synth: Synth) -> None:
    """No stale IAM5 acknowledgement: each one names an action or resource of a policy on what it covers."""
    checked = 0
    for node in synth.built.app.node.find_all():
        acknowledged = [
            key.partition("::")[2]
            for entry in node.node.metadata if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
            for key in entry.data
        ]
        findings = [rule for rule in acknowledged if rule.startswith("AwsSolutions-IAM5[")]
        if not findings:
            continue
        actions: set[str] = set()
        resources: set[str] = set()
        for child in node.node.find_all():
            if isinstance(child, iam.CfnPolicy):
                document = Stack.of(child).resolve(child.policy_document)
                for statement in document["Statement"]:
                    actions.update(as_list(statement["Action"]))
                    resources.update(_nag_form(r) for r in as_list(statement["Resource"]))
        for rule in findings:
            kind, _, value = rule.removeprefix("AwsSolutions-IAM5[").removesuffix("]").partition("::")
            assert value in (actions if kind == "Action" else resources), (node.node.path, rule)
            checked += 1
    assert checked > 20
