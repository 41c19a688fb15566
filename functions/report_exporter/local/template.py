"""Just enough CloudFormation to run a synthesized template in moto: resolve Ref/GetAtt/Join/ImportValue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"


class Resolver:
    """Resolves intrinsic functions against physical names chosen by the runner."""

    def __init__(self, templates: Mapping[str, dict[str, Any]], physical: Mapping[str, str],
                 arns: Mapping[str, str]) -> None:
        self._templates = templates
        self._physical = physical  # logical id -> physical name/id (Ref)
        self._arns = arns  # logical id -> ARN (GetAtt Arn)
        self._exports: dict[str, Any] = {}
        for template in templates.values():
            for output in (template.get("Outputs") or {}).values():
                name = (output.get("Export") or {}).get("Name")
                if name:
                    self._exports[name] = output["Value"]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                if attribute == "Arn":
                    return self._arns[logical]
                return self._physical[logical]
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self(part)) for part in parts)
            if key == "Fn::ImportValue":
                return self(self._exports[self(arg)])
            if key == "Fn::Select":
                index, items = arg
                return self(items)[int(index)]
        return {k: self(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "local"}
        if name in pseudo:
            return pseudo[name]
        return self._physical[name]


def resources(templates: Mapping[str, dict[str, Any]], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(logical id, properties) of every resource of ``kind`` across the templates."""
    return [
        (logical, resource.get("Properties") or {})
        for template in templates.values()
        for logical, resource in template.get("Resources", {}).items()
        if resource.get("Type") == kind
    ]


def definition(properties: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    body = properties["DefinitionString"]
    text = body if isinstance(body, str) else resolve(body)
    parsed: dict[str, Any] = json.loads(text)
    return parsed
