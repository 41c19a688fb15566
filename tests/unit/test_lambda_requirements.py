"""The Lambda bundles install exactly the versions the lock file pins, and only WriteParquet gets pyarrow."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins(name: str) -> dict[str, str]:
    lines = (ROOT / "functions" / name).read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))  # type: ignore[misc]


def test_bundle_pins_equal_the_lock() -> None:
    locked = {p["name"]: p["version"] for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    for name in ("requirements.txt", "requirements-parquet.txt"):
        for package, version in pins(name).items():
            assert locked.get(package) == version, f"{name}: {package}=={version}, uv.lock has {locked.get(package)}"


def test_only_the_parquet_bundle_carries_pyarrow() -> None:
    assert "pyarrow" not in pins("requirements.txt")
    assert "pyarrow" in pins("requirements-parquet.txt")
    assert set(pins("requirements.txt")) < set(pins("requirements-parquet.txt"))
