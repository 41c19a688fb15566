"""Lambda asset bundling without Docker: pip installs arm64 manylinux wheels next to our package.

Each bundle holds only what its handlers import: the modules of ``report_exporter`` reachable from the
handlers by their import statements (lazy ones inside functions included), and the wheels of one
requirements file, which a test checks against the third-party imports of those modules. Everything is
compiled to bytecode for the Lambda's Python at bundle time: ``/var/task`` is read-only, so otherwise
every cold start would compile every module it imports.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
# Not shipped to Lambda: the local runner, the CLI and the vendors' simulators.
EXCLUDE = ["local", "**/simulator.py", "**/__pycache__", "*.pyc", "requirements*.txt"]


PACKAGE = "report_exporter"


def module_file(module: str) -> Path | None:
    """The source file of one of our modules (a package's ``__init__.py``), or None if there is none."""
    base = FUNCTIONS_DIR.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every module named by an import statement anywhere in ``path`` (functions' lazy imports included)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.add(name)
            # ``from package import module`` names a module too.
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def import_closure(handlers: Iterable[str]) -> tuple[set[str], set[str]]:
    """Our modules reachable from ``handlers`` (``report_exporter.handlers.x.lambda_handler``) by import
    statements, with every parent package, and the top-level names of the other modules they import."""
    todo = [handler.rsplit(".", 1)[0] for handler in handlers]
    ours: set[str] = set()
    third_party: set[str] = set()
    while todo:
        module = todo.pop()
        path = module_file(module)
        if module in ours or path is None:
            continue
        ours.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        for name in _imports(path, module):
            if name.split(".")[0] == PACKAGE:
                todo.append(name)
            else:
                third_party.add(name.split(".")[0])
    return ours, third_party


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Installs ``requirements`` for Lambda's platform with pip, copies the modules of ours that ``handlers``
    import beside them, and compiles everything to bytecode for the Lambda's Python."""

    def __init__(self, requirements: Path, *, handlers: Iterable[str], arch: str = "aarch64",
                 python_version: str = "3.12") -> None:
        self._requirements = requirements
        self._handlers = tuple(handlers)
        self._arch = arch
        self._python_version = python_version

    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        python = target_python(self._python_version)  # before the install: no half-built bundle
        subprocess.run(self.install_command(output_dir), check=True)
        Path(output_dir, ".lock").unlink(missing_ok=True)  # uv's lock file for the target folder
        ours, _third_party = import_closure(self._handlers)
        for module in sorted(ours):
            source = module_file(module)
            assert source is not None
            target = Path(output_dir) / source.relative_to(FUNCTIONS_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        compile_bytecode(python, output_dir)
        return True

    def install_command(self, output_dir: str) -> list[str]:
        """Install the requirements as Lambda's python3.12 on Graviton sees them: aarch64 manylinux wheels only."""
        uv = _uv()
        if uv:
            # uv expands manylinux_2_34 to every older compatible tag (pyarrow >= 21 ships manylinux_2_28 only).
            return [uv, "pip", "install", "--quiet", "--no-compile", "--only-binary", ":all:",
                    "--python-platform", f"{self._arch}-manylinux_2_34", "--python-version", self._python_version,
                    "--target", output_dir, "-r", str(self._requirements)]
        # pip does not expand manylinux_2_X tags to older ones: list every family (``manylinux2014``
        # alone fails for current pyarrow, which ships manylinux_2_28 wheels only).
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
                   "--implementation", "cp", "--python-version", self._python_version, "--only-binary=:all:",
                   "--target", output_dir, "-r", str(self._requirements)]
        for platform in ("manylinux2014", "manylinux_2_28", "manylinux_2_34"):
            command += ["--platform", f"{platform}_{self._arch}"]
        return command


def target_python(version: str) -> str:
    """An interpreter of the Lambda runtime's Python version, to compile the bundle's bytecode with.

    ``BUNDLE_PYTHON`` names one; otherwise ``python3.12`` on PATH, then pyenv's and uv's installations.

    Raises:
        RuntimeError: none found (a bundle without bytecode would compile on every cold start).
    """
    candidates = [os.environ.get("BUNDLE_PYTHON", ""), shutil.which(f"python{version}") or ""]
    home = Path.home()
    for pattern in (f".pyenv/versions/{version}.*/bin/python{version}",
                    f".local/share/uv/python/cpython-{version}.*/bin/python{version}"):
        candidates += sorted((str(path) for path in home.glob(pattern)), reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise RuntimeError(f"no Python {version} to compile the Lambda bundles' bytecode with: install it "
                       f"(pyenv or uv) or name it in BUNDLE_PYTHON")


def compile_bytecode(python: str, directory: str) -> None:
    """Compile every module in ``directory`` for ``python``, valid whatever the files' times become.

    ``unchecked-hash`` bytecode is used without looking at the source: the asset's zip does not keep
    modification times exactly, and timestamp-checked bytecode would then be ignored and recompiled.
    Files that do not compile for that Python (a package's tests or templates) are skipped.
    """
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                    directory], check=False, stdout=subprocess.DEVNULL)


def _uv() -> str | None:
    """The project's pinned uv (installed by the Makefile into .tools/), or one on PATH."""
    pinned = FUNCTIONS_DIR.parent / ".tools" / "bin" / "uv"
    return str(pinned) if pinned.exists() else shutil.which("uv")


def source_hash(requirements_name: str, handlers: Iterable[str] = ()) -> str:
    """Hash of what goes into a bundle: our package (minus ``local/`` and simulators), the requirements file,
    the handlers (they choose the modules) and this file (it decides how the bundle is built)."""
    digest = hashlib.sha256(requirements_name.encode())
    digest.update((FUNCTIONS_DIR / requirements_name).read_bytes())
    digest.update(" ".join(sorted(handlers)).encode())
    digest.update(Path(__file__).read_bytes())
    package = FUNCTIONS_DIR / "report_exporter"
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        shipped = relative.parts[0] != "local" and path.name != "simulator.py" and "__pycache__" not in relative.parts
        if path.is_file() and shipped:
            digest.update(str(relative).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def lambda_code(requirements_name: str, *, handlers: Iterable[str], bundle: bool) -> lambda_.Code:
    """The code asset: the modules of ``functions/`` that ``handlers`` import, plus the wheels in
    ``functions/<requirements_name>``, compiled.

    The requirements file lives inside the asset folder so that changing a pin changes the asset hash.
    With ``bundle=False`` (tests, the local runner) the folder is referenced without installing anything.
    """
    requirements = FUNCTIONS_DIR / requirements_name
    handlers = tuple(handlers)
    asset_hash = source_hash(requirements_name, handlers)
    if not bundle:
        return lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=EXCLUDE, asset_hash=asset_hash,
                                       asset_hash_type=AssetHashType.CUSTOM)
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        exclude=["**/__pycache__", "*.pyc"],
        asset_hash=asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=DockerImage.from_registry("unused-local-bundling"),
                                 local=PipLocalBundling(requirements, handlers=handlers)),
    )
