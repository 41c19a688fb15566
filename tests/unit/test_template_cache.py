"""The local runner's templates: synthesized once, then read from a file named by what they depend on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from report_exporter.local import template
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

    monkeypatch.setattr(template, "_synthesize", fake)
    monkeypatch.setattr(template, "_SYNTHESIZED", {})
    return calls


def test_a_second_process_reads_the_templates_from_the_cache(counting_synth: list[ExportsFile],
                                                             tmp_path: Path) -> None:
    exports = demo_exports()
    first = template.synthesize(exports, cache=tmp_path)
    template._SYNTHESIZED.clear()  # as a new process starts
    second = template.synthesize(exports, cache=tmp_path)
    assert len(counting_synth) == 1 and second == first
    assert [p.name for p in (tmp_path / "templates").iterdir()] == [f"{template.template_key(exports)}.json"]


def test_other_exports_or_another_cdk_version_are_synthesized_again(
        counting_synth: list[ExportsFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exports = demo_exports()
    template.synthesize(exports, cache=tmp_path)
    template._SYNTHESIZED.clear()
    fewer = ExportsFile(exports=exports.exports[:2])
    template.synthesize(fewer, cache=tmp_path)
    template._SYNTHESIZED.clear()
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "9.9.9" if name == "aws-cdk-lib" else real(name))
    template.synthesize(exports, cache=tmp_path)
    assert len(counting_synth) == 3
    assert len(list((tmp_path / "templates").iterdir())) == 3


def test_an_unreadable_cache_file_is_synthesized_again(counting_synth: list[ExportsFile], tmp_path: Path) -> None:
    exports = demo_exports()
    path = tmp_path / "templates" / f"{template.template_key(exports)}.json"
    path.parent.mkdir(parents=True)
    path.write_text("{half a templ")
    templates = template.synthesize(exports, cache=tmp_path)
    assert len(counting_synth) == 1
    assert json.loads(path.read_text()) == templates


def test_the_key_hashes_the_infra_the_shipped_package_and_the_lock_but_not_the_local_runner() -> None:
    # Given the files the key is made of
    labels = [label for label, _ in template.sources()]
    # Then every infra source and every source the Lambda bundles ship is in, and the lock file
    assert "exporter_infra/app_builder.py" in labels and "exporter_infra/local_templates.py" in labels
    assert "report_exporter/handlers/write_parquet.py" in labels
    assert "report_exporter/vendors/particle/facts.py" in labels
    assert "uv.lock" in labels
    # And nothing only the local runner uses: editing a simulator or the runner keeps the cache warm
    assert not [label for label in labels if label.startswith("report_exporter/local/")]
    assert not [label for label in labels if label.endswith("/simulator.py")]
    assert len(labels) == len(set(labels))


def test_a_source_the_templates_depend_on_changes_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exports = demo_exports()
    before = template.template_key(exports)
    edited = tmp_path / "names.py"
    edited.write_text("# edited\n")
    real = list(template.sources())
    monkeypatch.setattr(template, "sources", lambda: iter(
        (label, edited if label == "exporter_infra/names.py" else path) for label, path in real))
    assert template.template_key(exports) != before


def test_a_failed_synth_says_so_with_the_childs_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given a synth module that fails
    monkeypatch.setattr(template, "SYNTH_MODULE", "no_such_module_for_the_templates")
    # When the templates are synthesized
    with pytest.raises(RuntimeError, match="no_such_module_for_the_templates"):
        template._synthesize(demo_exports())


def test_on_a_warm_cache_neither_the_cdk_nor_the_infra_is_imported(local_templates: dict[str, dict[str, Any]],
                                                                  tmp_path: Path) -> None:
    # Given the demo's templates in the cache, as a first run leaves them
    path = tmp_path / "templates" / f"{template.template_key(demo_exports())}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(local_templates))
    # When a new process starts the local runner with them
    code = ("import json, sys\n"
            "from report_exporter.local.runner import LocalEnvironment\n"
            "from report_exporter.local.template import synthesize\n"
            "from report_exporter.local.demo import demo_exports\n"
            "t = synthesize(demo_exports())\n"
            "with LocalEnvironment(demo_exports(), templates=t): pass\n"
            "print(json.dumps({'same': t == json.load(open(sys.argv[1])),"
            " 'imported': sorted(m for m in sys.modules if m.split('.')[0] in"
            " ('aws_cdk', 'exporter_infra', 'jsii', 'cdk_nag', 'constructs'))}))")
    env = {**os.environ, "REPORT_EXPORTER_CACHE": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("functions", "infra"))}
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
                         check=True).stdout
    # Then it got the same templates and ran without importing the CDK or the infra package
    assert json.loads(out.splitlines()[-1]) == {"same": True, "imported": []}
