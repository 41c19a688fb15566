"""Each Lambda bundle installs exactly the lock's versions of exactly what its handlers import."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from exporter_infra.bundling import import_closure
from exporter_infra.constructs.exporter_functions import (
    COMMON_HANDLERS,
    COMMON_REQUIREMENTS,
    PARQUET_HANDLERS,
    PARQUET_REQUIREMENTS,
)

ROOT = Path(__file__).resolve().parents[2]
LOCK = {p["name"]: p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
# Import name -> distribution. boto3 and botocore come with Lambda's python3.12 runtime.
DISTRIBUTIONS = {"aws_lambda_powertools": "aws-lambda-powertools", "pydantic": "pydantic", "httpx": "httpx",
                 "pyarrow": "pyarrow"}
RUNTIME = {"boto3", "botocore"}
BUNDLES = {COMMON_REQUIREMENTS: COMMON_HANDLERS, PARQUET_REQUIREMENTS: PARQUET_HANDLERS}


def pins(name: str) -> dict[str, str]:
    lines = (ROOT / "functions" / name).read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))  # type: ignore[misc]


def locked_closure(roots: set[str]) -> set[str]:
    """``roots`` and everything they depend on in uv.lock."""
    found: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(dep["name"] for dep in LOCK[name].get("dependencies", []))
    return found


def test_bundle_pins_equal_the_lock() -> None:
    for name in BUNDLES:
        for package, version in pins(name).items():
            assert LOCK[package]["version"] == version, f"{name}: {package}=={version}"


@pytest.mark.parametrize("requirements", sorted(BUNDLES))
def test_each_bundle_installs_what_its_handlers_import_and_nothing_else(requirements: str) -> None:
    # Given every import statement in the modules the bundle's handlers reach (lazy ones included)
    _, imported = import_closure(BUNDLES[requirements])
    third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
    # Then each is either provided by the runtime or mapped to a distribution
    assert third_party - RUNTIME <= set(DISTRIBUTIONS), third_party
    # And the bundle pins exactly those distributions and their dependencies
    needed = locked_closure({DISTRIBUTIONS[name] for name in third_party - RUNTIME})
    assert set(pins(requirements)) == needed


def test_only_the_parquet_bundle_carries_pyarrow_and_only_the_others_httpx() -> None:
    assert "pyarrow" not in pins(COMMON_REQUIREMENTS) and "pyarrow" in pins(PARQUET_REQUIREMENTS)
    assert "httpx" in pins(COMMON_REQUIREMENTS) and "httpx" not in pins(PARQUET_REQUIREMENTS)
    ours, _ = import_closure(PARQUET_HANDLERS)
    assert not any(module.startswith("report_exporter.adapters") for module in ours)
    ours, _ = import_closure(COMMON_HANDLERS)
    assert not any(module.startswith("report_exporter.datasets") for module in ours)
