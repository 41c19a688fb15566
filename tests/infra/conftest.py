"""Synth-only infra tests: the CDK app is built and synthesized once per session, cdk-nag included."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from exporter_infra.app_builder import ExporterApp, build_app
from exporter_infra.config import StageConfig
from tests.infra.support import infra_config


@dataclass(frozen=True)
class Synth:
    config: StageConfig
    built: ExporterApp
    outdir: Path
    storage: Template
    pipeline: Template

    @property
    def template_paths(self) -> list[Path]:
        return [self.outdir / f"{stack.stack_name}.template.json" for stack in (self.built.storage,
                                                                               self.built.pipeline)]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    config = infra_config()
    outdir = tmp_path_factory.mktemp("cdk.out")
    built = build_app(config, outdir=str(outdir))
    assembly = built.app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    return Synth(
        config=config,
        built=built,
        outdir=outdir,
        storage=Template.from_json(assembly.get_stack_by_name(built.storage.stack_name).template),
        pipeline=Template.from_json(assembly.get_stack_by_name(built.pipeline.stack_name).template),
    )


@pytest.fixture(scope="session")
def storage(synth: Synth) -> Template:
    return synth.storage


@pytest.fixture(scope="session")
def pipeline(synth: Synth) -> Template:
    return synth.pipeline
