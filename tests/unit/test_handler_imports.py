"""What importing a handler costs: no boto3, no Powertools parser, no httpx where no vendor is called.

Each handler is imported in a fresh interpreter, as a cold start does; ``make bench`` times the same
imports from the built bundles.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporter_infra import names

ROOT = Path(__file__).resolve().parents[2]
# Every deployed function's handler module (WatchRuns included), as the stack names them.
HANDLERS = sorted(handler.rsplit(".", 2)[-2] for handler in names.HANDLERS.values())
# (Powertools' own __init__ imports the botocore package, to add its user agent: that much is cheap.)
NEVER_AT_IMPORT = {"boto3", "botocore.session", "botocore.client", "aws_lambda_powertools.utilities.parser",
                   "aws_lambda_powertools.utilities.parameters"}


def imported_by(handler: str) -> set[str]:
    code = (f"import sys, json; sys.path[:0] = [{str(ROOT / 'functions')!r}]\n"
            f"import report_exporter.handlers.{handler}\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("handler", HANDLERS)
def test_importing_a_handler_loads_neither_boto3_nor_the_powertools_parser(handler: str) -> None:
    modules = imported_by(handler)
    assert f"report_exporter.handlers.{handler}" in modules
    assert not modules & NEVER_AT_IMPORT


def test_only_the_vendor_calling_handlers_import_httpx() -> None:
    assert {h for h in HANDLERS if "httpx" in imported_by(h)} == {"request_report", "check_report",
                                                                 "download_report"}
