"""The synthesized templates the local runner executes: where they come from, and just enough CloudFormation
to run them in moto (resolve Ref/GetAtt/Join/ImportValue).

The templates are synthesized from the CDK app in a child process (``python -m exporter_infra.local_templates``,
15-120 s) and kept on disk, named by a hash of what they depend on: the exports, the infra's sources, the
Lambda package's sources minus what the local runner alone uses (``local/``, the vendors' simulators), the
lock file and the CDK libraries' versions. A warm cache is one file read: the runner never imports the CDK
app nor the infra package.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from report_exporter.models.exports import ExportsFile

REGION = "us-east-1"
ACCOUNT = "123456789012"

# The synth's entry point, run as a child process: the Lambda package does not import the infra package.
SYNTH_MODULE = "exporter_infra.local_templates"
# What the templates depend on besides the sources: the CDK libraries (pinned by uv.lock when there is one).
_SYNTH_DISTRIBUTIONS = ("aws-cdk-lib", "constructs", "cdk-nag")
_SYNTHESIZED: dict[str, dict[str, dict[str, Any]]] = {}


def synthesize(exports: ExportsFile, *, cache: Path | None = None) -> dict[str, dict[str, Any]]:
    """Both stack templates for ``exports`` (no bundling, no Docker).

    Read from ``cache`` (default: ``$REPORT_EXPORTER_CACHE``, else ``~/.cache/report-exporter``) when
    a file there is named by :func:`template_key`; else synthesized in a child process and written there.
    Once per process in any case.
    """
    key = template_key(exports)
    if key not in _SYNTHESIZED:
        _SYNTHESIZED.clear()  # one set of exports at a time is what a process runs
        path = (cache or _cache_dir()) / "templates" / f"{key}.json"
        try:
            templates: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            templates = _synthesize(exports)
            _write_quietly(path, json.dumps(templates))
        _SYNTHESIZED[key] = templates
    return copy.deepcopy(_SYNTHESIZED[key])


def template_key(exports: ExportsFile) -> str:
    """A hash of everything the synthesized templates depend on, and of nothing else."""
    digest = hashlib.sha256(exports.model_dump_json().encode())
    for name in _SYNTH_DISTRIBUTIONS:
        try:
            digest.update(f"{name}=={importlib.metadata.version(name)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{name} missing".encode())
    for label, path in sources():
        digest.update(label.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def sources() -> Iterator[tuple[str, Path]]:
    """(label, path) of every file the templates are made from, in a stable order.

    The infra package (found without importing it), the Lambda package minus ``local/`` and the vendors'
    simulators (as the Lambda bundles leave them out), and the lock file beside ``infra/`` if there is one.
    """
    infra = _package_root("exporter_infra")
    functions = _package_root("report_exporter")
    for source in sorted(infra.rglob("*.py")):
        if "__pycache__" not in source.parts:
            yield f"exporter_infra/{source.relative_to(infra).as_posix()}", source
    for source in sorted(functions.rglob("*.py")):
        relative = source.relative_to(functions)
        if relative.parts[0] == "local" or source.name == "simulator.py" or "__pycache__" in relative.parts:
            continue
        yield f"report_exporter/{relative.as_posix()}", source
    lock = infra.parent.parent / "uv.lock"
    if lock.is_file():
        yield "uv.lock", lock


def _package_root(name: str) -> Path:
    """The folder of a top-level package, located (not imported)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the local runner needs the {name} package to synthesize its templates")
    return Path(next(iter(spec.submodule_search_locations)))


def _cache_dir() -> Path:
    configured = os.environ.get("REPORT_EXPORTER_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "report-exporter"


def _write_quietly(path: Path, text: str) -> None:
    """Keep the templates for the next process; a cache that cannot be written only costs the next synth."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temporary).replace(path)
    except OSError:
        return


def _synthesize(exports: ExportsFile) -> dict[str, dict[str, Any]]:
    """Run the CDK app's synth in a child process; its errors (a cdk-nag finding, say) are raised here."""
    roots = [str(_package_root(name).parent) for name in ("exporter_infra", "report_exporter")]
    inherited = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*roots, *([inherited] if inherited else [])]),
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    with tempfile.TemporaryDirectory(prefix="report-exporter-templates-") as folder:
        out = Path(folder) / "templates.json"
        done = subprocess.run([sys.executable, "-m", SYNTH_MODULE, str(out)], input=exports.model_dump_json(),
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"synthesizing the local templates failed ({SYNTH_MODULE}):\n{done.stderr[-4000:]}")
        templates: dict[str, dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
        return templates


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
