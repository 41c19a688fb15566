"""The Lambda package and the infra: the infra imports the Lambda package, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "report_exporter"
# The CDK app and what it is built with: the local runner reads their synthesized templates instead.
INFRA = ("exporter_infra", "aws_cdk", "cdk_nag", "constructs", "jsii")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (functions' lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_no_module_of_the_lambda_package_imports_the_infra() -> None:
    # Given every module of the Lambda package, the local runner and the CLI included
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50
    # Then none imports the infra package or the CDK
    offenders = {str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] in INFRA)
                 for path in modules}
    assert {path: found for path, found in offenders.items() if found} == {}


@pytest.mark.parametrize("source", ["import exporter_infra.names", "from exporter_infra import names",
                                    "def f():\n    from aws_cdk import App\n"])
def test_the_check_sees_top_level_and_lazy_imports(tmp_path: Path, source: str) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)
    assert {m.split(".")[0] for m in imported_modules(path)} & set(INFRA)
