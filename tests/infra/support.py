"""Helpers for the synth-only infra tests: the test exports config and template readers."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnResource, Stack
from aws_cdk.assertions import Template
from constructs import IConstruct

from exporter_infra.config import StageConfig
from report_exporter.models.exports import ExportsFile, parse_exports

# A small config, not infra/exports.toml: a Particle export with its own schedule and time zone, a
# disabled Particle export whose secret is managed elsewhere, and a KORE export with the default
# schedule and no flexible window.
EXPORTS: dict[str, Any] = {
    "exports": [
        {
            "name": "particle-fleet",
            "vendor": "particle",
            "secret_name": "report-exporter/particle-fleet",
            "scope": "org",
            "org": "acme-fleet",
            "schedule": {"day_of_month": 5, "hour": 7, "minute": 30, "timezone": "Europe/Berlin",
                         "flexible_window_minutes": 30},
            "rate_card": {"currency": "USD", "metrics": {"data_operations": {
                "included_quantity": "100000", "tiers": [{"up_to": "1000000", "unit_price": "0.0004"},
                                                         {"unit_price": "0.00025"}]}}},
        },
        {
            "name": "particle-sandbox",
            "vendor": "particle",
            "secret_name": "shared/particle-sandbox",
            "create_secret": False,
            "schedule": {"enabled": False},
        },
        {
            "name": "kore-account",
            "vendor": "kore",
            "secret_name": "report-exporter/kore-account",
            "granularity": "daily",
            "schedule": {"flexible_window_minutes": 0},
        },
    ]
}
SCANNED_BYTES_CUTOFF = 5 * 1024**3


def infra_exports() -> ExportsFile:
    return parse_exports(EXPORTS, source="tests/infra")


def infra_config(exports: ExportsFile | None = None, **overrides: Any) -> StageConfig:
    kwargs: dict[str, Any] = {"stage": "test", "bundle": False, "scanned_bytes_cutoff": SCANNED_BYTES_CUTOFF}
    if "alarm_email" not in overrides:
        # Synth refuses alerts without a destination unless they are explicitly off.
        kwargs["alerts"] = "off"
    return StageConfig(exports=exports or infra_exports(), **(kwargs | overrides))


def resources(template: Template, kind: str) -> list[dict[str, Any]]:
    return [dict(resource) for resource in template.find_resources(kind).values()]


def logical_ids(template: Template, kind: str) -> list[str]:
    return list(template.find_resources(kind))


def logical_id(construct: IConstruct) -> str:
    """The logical id CDK gave ``construct``'s resource, read from the construct tree (never hard-coded)."""
    cfn = construct.node.default_child
    assert isinstance(cfn, CfnResource), construct.node.path
    return str(Stack.of(cfn).resolve(cfn.logical_id))


def statements_of_role(template: Template, role_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to the role ``role_id``."""
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy")
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def joined(value: Any) -> str:
    """A CloudFormation string with ``Fn::Join`` flattened and references shown as ``{Ref}`` / ``{Id.Attr}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(joined(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "{" + str(value["Ref"]) + "}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "{" + ".".join(value["Fn::GetAtt"]) + "}"
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return "{import:" + joined(value["Fn::ImportValue"]) + "}"
    return json.dumps(value)


def cross_stack_exports(template: Template) -> dict[str, str]:
    """Export name -> the exported value, as :func:`joined` shows it (``{LogicalId.Arn}``, ``{LogicalId}``)."""
    return {
        str(output["Export"]["Name"]): joined(output["Value"])
        for output in template.to_json().get("Outputs", {}).values()
        if "Export" in output
    }


def resolved(value: Any, exports: dict[str, str]) -> str:
    """Like :func:`joined`, with every ``Fn::ImportValue`` replaced by what the other stack exports.

    So a grant on the storage stack's ledger reads ``{LedgerXXXX.Arn}`` in the pipeline's policies too.
    """
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return exports[joined(value["Fn::ImportValue"])]
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(resolved(part, exports) for part in parts)
    return joined(value)


def asl(template: Template) -> dict[str, Any]:
    """The state machine definition, with every token inside it replaced by ``REF``."""
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine")
    body = machine["Properties"]["DefinitionString"]
    if isinstance(body, dict):  # Fn::Join when tokens (function ARNs) are inside
        body = "".join(part if isinstance(part, str) else "REF" for part in body["Fn::Join"][1])
    definition: dict[str, Any] = json.loads(body)
    return definition
