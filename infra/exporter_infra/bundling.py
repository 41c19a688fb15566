"""Lambda asset bundling without Docker: pip installs arm64 manylinux wheels next to our package."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
# Not shipped to Lambda: the local runner, simulators and CLI.
EXCLUDE = ["local", "**/__pycache__", "*.pyc", "requirements*.txt"]


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Installs ``requirements`` for Lambda's platform with pip, then copies our package beside them."""

    def __init__(self, requirements: Path, *, arch: str = "aarch64", python_version: str = "3.12") -> None:
        self._requirements = requirements
        self._arch = arch
        self._python_version = python_version

    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        subprocess.run(self.install_command(output_dir), check=True)
        shutil.copytree(FUNCTIONS_DIR / "report_exporter", Path(output_dir) / "report_exporter", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "local"))
        return True

    def install_command(self, output_dir: str) -> list[str]:
        """Install the requirements as Lambda's python3.12 on Graviton sees them: aarch64 manylinux wheels only."""
        uv = _uv()
        if uv:
            # uv expands manylinux_2_34 to every older compatible tag (pyarrow >= 21 ships manylinux_2_28 only).
            return [uv, "pip", "install", "--quiet", "--no-compile", "--only-binary", ":all:",
                    "--python-platform", f"{self._arch}-manylinux_2_34", "--python-version", self._python_version,
                    "--target", output_dir, "-r", str(self._requirements)]
        # pip does not expand manylinux_2_X tags to older ones: list every family (feasibility.md §3).
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
                   "--implementation", "cp", "--python-version", self._python_version, "--only-binary=:all:",
                   "--target", output_dir, "-r", str(self._requirements)]
        for platform in ("manylinux2014", "manylinux_2_28", "manylinux_2_34"):
            command += ["--platform", f"{platform}_{self._arch}"]
        return command


def _uv() -> str | None:
    """The project's pinned uv (installed by the Makefile into .tools/), or one on PATH."""
    pinned = FUNCTIONS_DIR.parent / ".tools" / "bin" / "uv"
    return str(pinned) if pinned.exists() else shutil.which("uv")


def source_hash(requirements_name: str) -> str:
    """Hash of what goes into a bundle: our package (minus ``local/``) and the requirements file."""
    digest = hashlib.sha256(requirements_name.encode())
    digest.update((FUNCTIONS_DIR / requirements_name).read_bytes())
    package = FUNCTIONS_DIR / "report_exporter"
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if path.is_file() and relative.parts[0] != "local" and "__pycache__" not in relative.parts:
            digest.update(str(relative).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def lambda_code(requirements_name: str, *, bundle: bool) -> lambda_.Code:
    """The code asset: ``functions/`` plus the wheels in ``functions/<requirements_name>``.

    The requirements file lives inside the asset folder so that changing a pin changes the asset hash.
    With ``bundle=False`` (tests, the local runner) the folder is referenced without installing anything.
    """
    requirements = FUNCTIONS_DIR / requirements_name
    asset_hash = source_hash(requirements_name)
    if not bundle:
        return lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=EXCLUDE, asset_hash=asset_hash,
                                       asset_hash_type=AssetHashType.CUSTOM)
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        exclude=["**/__pycache__", "*.pyc"],
        asset_hash=asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=DockerImage.from_registry("unused-local-bundling"),
                                 local=PipLocalBundling(requirements)),
    )
