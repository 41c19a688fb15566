"""cdk-nag (AwsSolutions) on every synth, and the helpers that acknowledge its findings one by one.

cdk-nag 3 runs as a CDK policy-validation plugin: any finding without an acknowledgement fails the
synth (``ValidationFailed``, report in ``<outdir>/validation-report.json``). Acknowledgements sit next
to the resource they concern, each with its own reason; wildcard (IAM5) findings are acknowledged
finding by finding, never per rule.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, CfnResource, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_checks(app: App) -> None:
    """Run the AwsSolutions rule pack on everything in ``app`` at synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one finding (``AwsSolutions-XX`` or ``AwsSolutions-IAM5[...]``) on ``scope`` and below."""
    if len(reason) < 20:
        raise ValueError(f"acknowledgement of {rule} on {scope.node.path} needs a real reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def arn_reference(resource: IConstruct, *, seen_from: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag prints ``resource``'s ARN in a policy of ``seen_from``'s stack (for IAM5 finding ids).

    In the same stack it is ``<LogicalId.Arn>``; from another stack it is the name of the automatic
    cross-stack export, which ``Stack.export_value`` creates (or reuses) under the same name.
    """
    cfn = resource.node.default_child
    if not isinstance(cfn, CfnResource):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource")
    owner = Stack.of(resource)
    logical_id = owner.resolve(cfn.logical_id)
    if owner is Stack.of(seen_from):
        return f"<{logical_id}.{attribute}>"
    exported = owner.resolve(owner.export_value(cfn.get_att(attribute).to_string()))
    return str(exported["Fn::ImportValue"])
