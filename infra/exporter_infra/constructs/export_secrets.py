"""One Secrets Manager secret per export, holding the vendor credentials as a JSON object.

The stateful stack creates each secret empty (``{}``); an operator sets its value once, e.g.
``aws secretsmanager put-secret-value --secret-id <name> --secret-string file://creds.json``. An export
with ``create_secret = false`` names a secret managed elsewhere: it is only referenced by name.

Reads are granted by name (``<name>-??????``, the suffix Secrets Manager appends) from the grantee's own
stack, so the stateless stack never imports secret ARNs: adding or removing an export never trips over a
cross-stack export that is still in use. The names are the stage's own (``StageConfig.deployed_exports``:
``<stage>/<secret_name>`` outside prod), so one stage's functions cannot read another's secrets.

A vendor-calling function may read every configured export's secret, not only its vendor's: one function
serves every export and learns which from the execution input, which IAM cannot see. Narrower would need a
function (and role) per vendor or export.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from exporter_infra import nag
from report_exporter.models.exports import ExportSpec
from report_exporter.vendors import FACTS


def secret_description(export: ExportSpec) -> str:
    fields = ", ".join(f'"{field}"' for field in FACTS[export.vendor_name].secret_fields)
    return (f"report-exporter credentials for export {export.name} ({export.vendor_name.value}): "
            f"a JSON object with {fields}")


class ExportSecrets(Construct):
    """Creates the secrets of the exports that want one; grants read on every export's secret."""

    def __init__(self, scope: Construct, id_: str, *, exports: tuple[ExportSpec, ...], create: bool = True) -> None:
        super().__init__(scope, id_)
        self._names = sorted({export.secret_name for export in exports})
        self.created: dict[str, secretsmanager.Secret] = {}
        for export in exports:
            if not (create and export.create_secret) or export.secret_name in self.created:
                continue
            secret = secretsmanager.Secret(
                self,
                export.name,
                secret_name=export.secret_name,
                description=secret_description(export),
                # Empty on purpose: the value is set out of band and never passes through CloudFormation.
                # Keep it constant: CloudFormation writes a new version only when this value changes.
                secret_object_value={},
                removal_policy=RemovalPolicy.RETAIN,
            )
            nag.acknowledge(
                secret, "AwsSolutions-SMG4",
                f"{export.vendor_name.value} credentials are issued in the vendor's console or API; rotating them "
                "needs a vendor-specific rotation function, so they are rotated by an operator instead",
            )
            self.created[export.secret_name] = secret

    @property
    def secret_names(self) -> list[str]:
        return list(self._names)

    def arn_patterns(self, scope: Construct) -> list[str]:
        """ARNs (with Secrets Manager's 6-character suffix) of every export's secret, in ``scope``'s stack."""
        stack = Stack.of(scope)
        return [
            stack.format_arn(service="secretsmanager", resource="secret", resource_name=f"{name}-??????",
                             arn_format=ArnFormat.COLON_RESOURCE_NAME)
            for name in self._names
        ]

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """``secretsmanager:GetSecretValue`` on exactly the exports' secrets (not DescribeSecret, not others)."""
        scope = grantee if isinstance(grantee, Construct) else self
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["secretsmanager:GetSecretValue"], resource_arns=self.arn_patterns(scope)
        )

