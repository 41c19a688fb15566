"""The templates the local runner executes, synthesized in a process of their own.

``python -m exporter_infra.local_templates OUT`` reads an exports file (its JSON) on stdin and writes
both stacks' templates for the ``local`` stage (no bundling, no Docker, alerts off) to ``OUT`` as one
JSON object ``{stack name: template}``. The local runner (``report_exporter.local.template``) starts
this only when its cache has no templates for what they depend on, so the Lambda package never
imports the infra (the infra imports the Lambda package, not the other way round).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from exporter_infra.app_builder import build_app
from exporter_infra.config import StageConfig
from report_exporter.models.exports import ExportsFile


def templates(exports: ExportsFile) -> dict[str, dict[str, Any]]:
    """Both stack templates for ``exports`` on the ``local`` stage; one synth (cdk-nag runs once)."""
    with tempfile.TemporaryDirectory(prefix="report-exporter-synth-") as outdir:
        built = build_app(StageConfig(exports=exports, stage="local", bundle=False, alerts="off"), outdir=outdir)
        assembly = built.app.synth()
        return {
            stack.stack_name: dict(assembly.get_stack_by_name(stack.stack_name).template)
            for stack in (built.storage, built.pipeline)
        }


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m exporter_infra.local_templates OUT < exports.json")
    exports = ExportsFile.model_validate_json(sys.stdin.read())
    Path(argv[0]).write_text(json.dumps(templates(exports)), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
