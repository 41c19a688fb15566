"""The local runner's templates: synthesized once, then read from a file named by what they depend on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from report_exporter.local import runner
from report_exporter.local.demo import demo_exports
from report_exporter.models.exports import ExportsFile

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def counting_synth(monkeypatch: pytest.MonkeyPatch) -> list[ExportsFile]:
    """Replace the CDK synth with a recorder that returns a small template per call."""
    calls: list[ExportsFile] = []

    def fake(exports: ExportsFile) -> dict[str, dict[str, Any]]:
        calls.append(exports)
        return {"local-storage": {"Resources": {"N": {"Type": "x", "Properties": {"calls": len(calls)}}}}}

    monkeypatch.setattr(runner, "_synthesize", fake)
    monkeypatch.setattr(runner, "_SYNTHESIZED", {})
    return calls


def test_a_second_process_reads_the_templates_from_the_cache(counting_synth: list[ExportsFile],
                                                             tmp_path: Path) -> None:
    exports = demo_exports()
    first = runner.synthesize(exports, cache=tmp_path)
    runner._SYNTHESIZED.clear()  # as a new process starts
    second = runner.synthesize(exports, cache=tmp_path)
    assert len(counting_synth) == 1 and second == first
    assert [p.name for p in (tmp_path / "templates").iterdir()] == [f"{runner.template_key(exports)}.json"]


def test_other_exports_or_another_cdk_version_are_synthesized_again(
        counting_synth: list[ExportsFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exports = demo_exports()
    runner.synthesize(exports, cache=tmp_path)
    runner._SYNTHESIZED.clear()
    fewer = ExportsFile(exports=exports.exports[:2])
    runner.synthesize(fewer, cache=tmp_path)
    runner._SYNTHESIZED.clear()
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "9.9.9" if name == "aws-cdk-lib" else real(name))
    runner.synthesize(exports, cache=tmp_path)
    assert len(counting_synth) == 3
    assert len(list((tmp_path / "templates").iterdir())) == 3


def test_an_unreadable_cache_file_is_synthesized_again(counting_synth: list[ExportsFile], tmp_path: Path) -> None:
    exports = demo_exports()
    path = tmp_path / "templates" / f"{runner.template_key(exports)}.json"
    path.parent.mkdir(parents=True)
    path.write_text("{half a templ")
    templates = runner.synthesize(exports, cache=tmp_path)
    assert len(counting_synth) == 1
    assert json.loads(path.read_text()) == templates


def test_on_a_warm_cache_the_cdk_app_is_not_imported(local_templates: dict[str, dict[str, Any]],
                                                     tmp_path: Path) -> None:
    # Given the demo's templates in the cache, as a first run leaves them
    path = tmp_path / "templates" / f"{runner.template_key(demo_exports())}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(local_templates))
    # When a new process asks for them
    code = ("import json, sys\n"
            "from report_exporter.local.runner import synthesize\n"
            "from report_exporter.local.demo import demo_exports\n"
            "t = synthesize(demo_exports())\n"
            "print(json.dumps({'same': t == json.load(open(sys.argv[1])),"
            " 'cdk': sorted(m for m in sys.modules if m.startswith(('aws_cdk', 'exporter_infra.app')))}))")
    env = {**os.environ, "REPORT_EXPORTER_CACHE": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("functions", "infra"))}
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
                         check=True).stdout
    # Then it got the same templates without importing the CDK app
    assert json.loads(out) == {"same": True, "cdk": []}
