"""Every vendor is registered everywhere the README's "Add a vendor" says, and its facts agree with its code.

A vendor folder that misses a module, a registry line, sample events, a sample export or its README row
fails here by name, not later in a deploy or a run.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.http_client import build_client
from report_exporter.adapters.registry import ADAPTERS
from report_exporter.clock import VirtualClock
from report_exporter.datasets.registry import datasets_for
from report_exporter.errors import SecretError
from report_exporter.focus.vendors import BRANCHES
from report_exporter.local.demo import SIMULATORS, demo_exports
from report_exporter.models.exports import ExportSpec, VendorName, load_exports
from report_exporter.vendors import FACTS

ROOT = Path(__file__).resolve().parents[2]
VENDORS_DIR = ROOT / "functions" / "report_exporter" / "vendors"
MODULES = ("__init__", "facts", "export", "adapter", "dataset", "focus", "simulator")
EVENTS = ("request_report/{v}.json", "download_report/{v}.json", "write_parquet/{v}.json",
          "state_machine/{v}_monthly.json")
VENDORS = list(VendorName)
NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def test_each_vendor_folder_is_a_vendor_and_each_vendor_has_a_folder() -> None:
    folders = {path.name for path in VENDORS_DIR.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders == {vendor.value for vendor in VendorName}


@pytest.mark.parametrize("vendor", VENDORS, ids=str)
def test_vendor_folder_has_every_module(vendor: VendorName) -> None:
    missing = [name for name in MODULES if not (VENDORS_DIR / vendor.value / f"{name}.py").is_file()]
    assert not missing, f"vendors/{vendor.value}/ lacks {missing}"
    for name in MODULES:
        module = importlib.import_module(f"report_exporter.vendors.{vendor.value}.{name}")
        assert module.__doc__, f"vendors/{vendor.value}/{name}.py has no module docstring"


@pytest.mark.parametrize("vendor", VENDORS, ids=str)
def test_vendor_is_in_every_registry(vendor: VendorName) -> None:
    assert FACTS[vendor].vendor is vendor
    assert vendor in ADAPTERS, "adapters.registry.ADAPTERS"
    assert vendor in BRANCHES, "focus.vendors.BRANCHES"
    assert vendor in SIMULATORS, "local.demo.SIMULATORS"
    models = {model.model_fields["vendor"].default for model in get_args(get_args(ExportSpec)[0])}
    assert vendor.value in models, "models.exports.ExportSpec"
    # The facts name the tables the dataset registry holds for the vendor, in order.
    names = tuple(dataset.name for dataset in datasets_for(vendor))
    assert FACTS[vendor].datasets == names, "datasets.registry.DATASETS"


@pytest.mark.parametrize("vendor", VENDORS, ids=str)
def test_vendor_has_sample_events_and_sample_exports(vendor: VendorName) -> None:
    missing = [pattern.format(v=vendor.value) for pattern in EVENTS
               if not (ROOT / "events" / pattern.format(v=vendor.value)).is_file()]
    assert not missing, f"events/ lacks {missing}"
    sample = load_exports(ROOT / "infra" / "exports.toml")
    assert any(export.vendor_name is vendor for export in sample.exports), "infra/exports.toml"
    assert any(export.vendor_name is vendor for export in demo_exports().exports), "local/demo_exports.toml"


@pytest.mark.parametrize("vendor", VENDORS, ids=str)
def test_readme_lists_the_vendor_and_its_secret_fields(vendor: VendorName) -> None:
    readme = (ROOT / "README.md").read_text()
    row = re.search(rf"^\| `{vendor.value}` \| ([^|]*) \|", readme, re.MULTILINE)
    assert row, f"README's export table has no row for {vendor.value}"
    assert tuple(re.findall(r"`([^`]+)`", row.group(1))) == FACTS[vendor].secret_fields
    assert FACTS[vendor].provider.split()[0] in readme.split("## Run it")[0], "README's opening list of vendors"


class Recording(Mapping[str, SecretStr]):
    """A secret that records which fields are read."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        self._values = {name: SecretStr(f"value-of-{name}") for name in fields}
        self.read: list[str] = []

    def __getitem__(self, key: str) -> SecretStr:
        self.read.append(key)
        return self._values[key]

    def get(self, key: str, default: object = None) -> SecretStr | None:  # type: ignore[override]
        self.read.append(key)
        return self._values.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _export(vendor: VendorName) -> ExportSpec:
    return next(export for export in demo_exports().exports if export.vendor_name is vendor)


def _client() -> httpx.Client:
    return build_client("http://vendor.test", transport=httpx.MockTransport(lambda request: httpx.Response(500)))


@pytest.mark.parametrize("vendor", VENDORS, ids=str)
def test_adapter_reads_exactly_the_secret_fields_the_facts_declare(vendor: VendorName) -> None:
    # Infra describes each secret with the facts' fields; the adapter must read those and no others.
    secret = Recording(FACTS[vendor].secret_fields)
    ADAPTERS[vendor](_export(vendor), _client(), secret, VirtualClock(NOW))
    assert set(secret.read) == set(FACTS[vendor].secret_fields)
    for field in FACTS[vendor].secret_fields:
        partial = Recording(tuple(f for f in FACTS[vendor].secret_fields if f != field))
        with pytest.raises(SecretError, match=field):
            ADAPTERS[vendor](_export(vendor), _client(), partial, VirtualClock(NOW))


@pytest.mark.parametrize("vendor", VENDORS, ids=str)
def test_adapter_polls_on_the_cadence_of_its_facts(vendor: VendorName) -> None:
    adapter = ADAPTERS[vendor](_export(vendor), _client(), Recording(FACTS[vendor].secret_fields), VirtualClock(NOW))
    assert adapter.cadence == FACTS[vendor].cadence


def test_infra_sample_config_is_the_one_documented() -> None:
    # The sample the README points to parses, and names every vendor once at least.
    raw = tomllib.loads((ROOT / "infra" / "exports.toml").read_text())
    assert {entry["vendor"] for entry in raw["exports"]} == {vendor.value for vendor in VendorName}


@pytest.mark.parametrize("module", [f"{v.value}.{name}" for v in VENDORS for name in MODULES if name != "__init__"])
def test_each_vendor_module_imports_on_its_own(module: str) -> None:
    # A newcomer (or a test) importing one vendor module first must not trip over a registry's import cycle.
    code = f"import report_exporter.vendors.{module}"
    path = os.pathsep.join([str(ROOT / "functions"), str(ROOT / "infra")])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": path}, check=False)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]
