"""Builds the CDK app: used by ``app.py`` (deploy), the tests and the local runner alike."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from exporter_infra import nag
from exporter_infra.config import StageConfig
from exporter_infra.stacks.pipeline_stack import PipelineStack
from exporter_infra.stacks.storage_stack import StorageStack


@dataclass(frozen=True)
class ExporterApp:
    app: cdk.App
    storage: StorageStack
    pipeline: PipelineStack


def build_app(config: StageConfig, *, outdir: str | None = None, env: cdk.Environment | None = None) -> ExporterApp:
    """The two stacks for ``config``, named for its stage. With ``config.bundle`` false, Lambda assets are not built.

    cdk-nag's AwsSolutions checks always run: an unacknowledged finding fails the synth.
    """
    # Server access logs are delivered through a bucket policy (works with BucketOwnerEnforced).
    context: dict[str, object] = {"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True}
    if not config.bundle:
        context["aws:cdk:bundling-stacks"] = []
    app = cdk.App(outdir=outdir, context=context)
    stage = config.names
    storage = StorageStack(app, stage.storage_stack, config=config, env=env)
    pipeline = PipelineStack(app, stage.pipeline_stack, config=config, storage=storage, env=env)
    nag.add_checks(app)
    return ExporterApp(app=app, storage=storage, pipeline=pipeline)
