"""The ``focus_usage`` view over the demo's output for all five vendors, two months each.

Every demo export runs through the real state machine against its simulator (as ``report-exporter demo``
does), the curated Parquet is mirrored locally, and DuckDB answers the view with the SQL text Athena runs.
Each vendor's quantities and costs in the view are checked against its own table, per export and month,
exactly (decimals, no tolerance). The view's output, written as a FOCUS CSV file, then goes through the FinOps
Foundation's focus-validator (its own environment, .venv-focus: docs/focus.md).
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from report_exporter.clock import VirtualClock
from report_exporter.focus.columns import COLUMNS
from report_exporter.focus.queries import QUERIES
from report_exporter.focus.view import VIEW_NAME, view_sql
from report_exporter.local import query
from report_exporter.local.demo import SIMULATORS, demo_exports
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import ExportsFile, VendorName
from report_exporter.vendors.senet.simulator import SenetSimulator
from tests.local.conftest import START

PERIODS = ("2026-09", "2026-10")
ROOT = Path(__file__).resolve().parents[2]
FOCUS_PYTHON = ROOT / ".venv-focus" / "bin" / "python"


@pytest.fixture(scope="module")
def demo_out(local_templates: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every demo export, for both months, run end to end; the objects mirrored under one folder."""
    out = tmp_path_factory.mktemp("demo")
    exports = demo_exports()
    # The demo's Senet simulator answers "not yet" once, which only the latest month waits out.
    simulators = SIMULATORS | {VendorName.SENET: SenetSimulator}
    with LocalEnvironment(exports, templates=local_templates, clock=VirtualClock(START)) as env:
        for period in PERIODS:
            for export in exports.exports:
                with simulators[export.vendor_name]() as simulator:
                    result = env.run(export, period=period, simulator=simulator)
                assert result.succeeded, (export.name, period, result.cause)
        env.download(out)
    return out


@pytest.fixture
def con(demo_out: Path) -> Iterator[Any]:
    connection = query.connect(demo_out, demo_exports())
    yield connection
    connection.close()


def _by_key(con: Any, sql: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {tuple(row[:-2]): tuple(row[-2:]) for row in con.execute(sql).fetchall()}


def _view(con: Any, metric: str | None = None, dataset: str | None = None) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Per export and month: (sum ConsumedQuantity, sum BilledCost) over the view's rows of one metric/table."""
    conditions = [f"x_Metric = '{metric}'" if metric else "TRUE", f"x_Dataset = '{dataset}'" if dataset else "TRUE"]
    return _by_key(con, f"""SELECT x_Export, x_Period, sum(ConsumedQuantity), sum(BilledCost) FROM {VIEW_NAME}
        WHERE {' AND '.join(conditions)} GROUP BY ALL""")


def _rate_card_cost(vendor_total: Decimal, export: str, metric: str) -> Decimal:
    rate = demo_exports().get(export).rate_card
    assert rate is not None
    return rate.metrics[metric].price(vendor_total)


def test_every_vendor_and_month_is_in_the_view(con: Any) -> None:
    found = con.execute(f"SELECT DISTINCT x_Vendor, x_Period FROM {VIEW_NAME}").fetchall()
    assert set(found) == {(vendor.value, period) for vendor in VendorName for period in PERIODS}
    assert [d[0] for d in con.execute(f"SELECT * FROM {VIEW_NAME} LIMIT 0").description] == [c.name for c in COLUMNS]


def test_particle_quantities_and_rate_card_costs_match_its_table(con: Any) -> None:
    table = _by_key(con, """SELECT export, period, sum(data_operations), count(*) FROM particle_data_operations
        GROUP BY ALL""")
    view = _view(con, "data_operations")
    assert set(view) == set(table) == {("particle-demo", p) for p in PERIODS}
    for key, (operations, _rows) in table.items():
        quantity, cost = view[key]
        assert quantity == operations
        # The month's tiered price (included quantity first), to the last decimal.
        assert cost == _rate_card_cost(Decimal(operations), "particle-demo", "data_operations")
        assert cost > 0


def test_here_quantities_and_rate_card_costs_match_its_table(con: Any) -> None:
    table = _by_key(con, """SELECT export, period, item_name, sum(usage_value), sum(billable_value) FROM here_usage
        GROUP BY ALL""")
    view = _by_key(con, f"""SELECT x_Export, x_Period, x_Metric, sum(ConsumedQuantity), sum(PricingQuantity)
        FROM {VIEW_NAME} WHERE x_Vendor = 'here' GROUP BY ALL""")
    assert view == table
    costs = _by_key(con, f"""SELECT x_Export, x_Period, x_Metric, count(BilledCost), sum(BilledCost)
        FROM {VIEW_NAME} WHERE x_Vendor = 'here' GROUP BY ALL""")
    rate_card = demo_exports().get("here-demo").rate_card
    assert rate_card is not None
    for (export, period, item), (_usage, billable) in table.items():
        priced, cost = costs[(export, period, item)]
        if item in rate_card.metrics:
            assert cost == rate_card.metrics[item].price(billable)
        else:
            # No price for the item: no cost, and the rows are still there with their quantities.
            assert (priced, cost) == (0, None)
    assert any(item not in rate_card.metrics for _, _, item in table)


def test_telnyx_quantities_and_its_own_costs_match_its_table(con: Any) -> None:
    table = _by_key(con, """SELECT export, period, currency, sum(metrics['parts']), sum(cost) FROM telnyx_usage
        GROUP BY ALL""")
    view = _by_key(con, f"""SELECT x_Export, x_Period, BillingCurrency, sum(ConsumedQuantity), sum(BilledCost)
        FROM {VIEW_NAME} WHERE x_Vendor = 'telnyx' GROUP BY ALL""")
    assert view == table
    assert set(con.execute(f"SELECT DISTINCT x_Metric, x_CostSource FROM {VIEW_NAME} WHERE x_Vendor = 'telnyx'")
               .fetchall()) == {("parts", "Vendor")}


def test_senet_quantities_and_rate_card_costs_match_its_tables(con: Any) -> None:
    applications = _by_key(con, """SELECT export, period, sum(number_of_active_devices), count(*)
        FROM senet_application_month GROUP BY ALL""")
    devices = _by_key(con, """SELECT export, period, sum(uplinks), sum(downlinks) FROM senet_device_month
        GROUP BY ALL""")
    active = _view(con, "active_devices", "senet_application_month")
    uplinks = _view(con, "uplinks", "senet_device_month")
    downlinks = _view(con, "downlinks", "senet_device_month")
    assert set(applications) == set(devices) == set(active) == {("senet-demo", p) for p in PERIODS}
    for key, (count, _rows) in applications.items():
        assert active[key] == (count, _rate_card_cost(Decimal(count), "senet-demo", "active_devices"))
        assert uplinks[key] == (devices[key][0], None)
        assert downlinks[key] == (devices[key][1], None)


def test_kore_quantities_and_its_own_costs_match_its_table(con: Any) -> None:
    data = _by_key(con, "SELECT export, period, sum(data_total), sum(data_billed) FROM kore_usage_records GROUP BY ALL")
    commands = _by_key(con, """SELECT export, period, sum(commands_total), sum(commands_billed) FROM kore_usage_records
        GROUP BY ALL""")
    assert set(data) == {("kore-demo", p) for p in PERIODS}
    assert _view(con, "data") == data
    assert _view(con, "commands") == commands


def test_every_row_of_every_table_is_a_charge(con: Any) -> None:
    tables = dict(con.execute("""SELECT 'particle_data_operations', count(*) FROM particle_data_operations
        UNION ALL SELECT 'here_usage', count(*) FROM here_usage
        UNION ALL SELECT 'telnyx_usage', count(*) FROM telnyx_usage
        UNION ALL SELECT 'senet_application_month', count(*) FROM senet_application_month
        UNION ALL SELECT 'senet_device_month', 2 * count(*) FROM senet_device_month
        UNION ALL SELECT 'kore_usage_records', 2 * count(*) FROM kore_usage_records""").fetchall())
    view = dict(con.execute(f"SELECT x_Dataset, count(*) FROM {VIEW_NAME} GROUP BY ALL").fetchall())
    assert view == tables


def test_named_queries_answer_across_vendors(con: Any) -> None:
    results = {q.name: query.rows(con, q.sql) for q in QUERIES}
    _, by_service = results["focus_cost_by_vendor_service_month"]
    assert {row[1] for row in by_service} == {"Particle", "HERE Technologies", "Telnyx", "Senet", "KORE Wireless"}
    total = con.execute(f"SELECT sum(BilledCost) FROM {VIEW_NAME} WHERE BillingCurrency = 'USD'").fetchone()[0]
    assert sum(row[4] for row in by_service if row[3] == "USD") == total
    _, top = results["focus_top_resources_latest_month"]
    assert 0 < len(top) <= 20 and {row[0] for row in top} == {PERIODS[-1]}
    _, change = results["focus_service_month_over_month"]
    particle = [row for row in change if row[0] == "Particle"]
    assert [row[3] for row in particle] == list(PERIODS)
    assert particle[1][6] == particle[1][4] - particle[0][4]
    _, unpriced = results["focus_usage_without_price"]
    assert {(row[1], row[4]) for row in unpriced} == {
        ("here-demo", 'Stream "hot" storage'), ("senet-demo", "uplinks"), ("senet-demo", "downlinks"),
    }


def test_the_local_view_is_the_sql_athena_runs(con: Any) -> None:
    # The text the Glue view holds (tests/infra/test_focus_view.py), run as it is, answers what the view does.
    order = ", ".join(f"{c.name} NULLS FIRST" for c in COLUMNS)
    as_text = con.execute(f"SELECT * FROM ({view_sql(demo_exports().exports)}) ORDER BY {order}").fetchall()
    assert as_text == con.execute(f"SELECT * FROM {VIEW_NAME} ORDER BY {order}").fetchall()
    assert len(as_text) > 3000


# focus-validator 1.0.0 (FOCUS 1.0 rules): what it reports on the view's output, each explained in docs/focus.md.
VALIDATOR_DEFECTS = {
    # The rule set still names four columns as FOCUS 0.5 did; FOCUS 1.0 names them ProviderName,
    # PublisherName, InvoiceIssuerName and ResourceId, which the view has.
    "Provider_Required", "Publisher_Required", "InvoiceIssuer_Required", "ResourceID_Required",
    # Its SQL reads ChargeType, a FOCUS 0.5 column that FOCUS 1.0 replaced by ChargeCategory: KeyError.
    "SkuPriceId_Nullable",
}
UNPRICED_USAGE = {
    # Usage with neither a vendor cost nor a rate card price has no cost and no currency: NULL, not 0.
    "BilledCost_NotNull", "EffectiveCost_NotNull", "ListCost_NotNull", "ContractedCost_NotNull",
    "BillingCurrency_NotNull",
}
RENAMED_FOR_THE_VALIDATOR = {
    "ProviderName": "Provider", "PublisherName": "Publisher", "InvoiceIssuerName": "InvoiceIssuer",
    "ResourceId": "ResourceID",
}


def _validate(data_file: Path, tmp_path: Path) -> tuple[int, set[str]]:
    """Run focus-validator on ``data_file``: (rules checked, rules failed)."""
    if not FOCUS_PYTHON.exists():
        pytest.fail("focus-validator is not installed: run `make setup` (it syncs the `focus` group into .venv-focus)")
    site = subprocess.run([str(FOCUS_PYTHON), "-c", "import focus_validator, pathlib; "
                           "print(pathlib.Path(focus_validator.__file__).parent.parent)"],
                          check=True, capture_output=True, text=True).stdout.strip()
    report = tmp_path / f"{data_file.stem}.xml"
    # Run from its install folder: the validator opens its currency-code list by a path relative to the cwd.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    completed = subprocess.run(
        [str(FOCUS_PYTHON), "-m", "focus_validator.main", "--data-file", str(data_file), "--validate-version", "1.0",
         "--output-type", "unittest", "--output-destination", str(report)],
        cwd=site, capture_output=True, text=True, timeout=600, env=env, check=False,
    )
    assert report.exists(), completed.stdout + completed.stderr
    suites = ET.parse(report).getroot()
    cases = suites.iter("testcase")
    failed = {case.get("name", "").split(" :: ")[0] for case in cases if case.find("failure") is not None}
    return int(suites.get("tests", "0")), failed


def test_the_view_output_against_focus_validator(con: Any, tmp_path: Path) -> None:
    every = tmp_path / "focus_usage.csv"
    priced = tmp_path / "focus_usage_priced.csv"
    assert query.write_focus_csv(con, every) > 0
    assert query.write_focus_csv(con, priced, where="BilledCost IS NOT NULL") > 0

    # Every row: the validator's own defects, and the cost columns of the usage nobody priced.
    checked, failed = _validate(every, tmp_path)
    assert checked == 133
    assert failed == VALIDATOR_DEFECTS | UNPRICED_USAGE, failed

    # The priced rows: only the validator's defects.
    _, failed = _validate(priced, tmp_path)
    assert failed == VALIDATOR_DEFECTS

    # And with the four columns under the names the validator looks for, only its ChargeType query fails.
    renamed = tmp_path / "focus_usage_renamed.csv"
    header, rest = priced.read_text(encoding="utf-8").split("\n", 1)
    names = [RENAMED_FOR_THE_VALIDATOR.get(name, name) for name in header.split(",")]
    renamed.write_text(",".join(names) + "\n" + rest, encoding="utf-8")
    _, failed = _validate(renamed, tmp_path)
    assert failed == {"SkuPriceId_Nullable"}


def test_the_documented_failures_are_the_ones_the_validator_reports() -> None:
    notes = (ROOT / "docs" / "focus.md").read_text(encoding="utf-8")
    for rule in sorted(VALIDATOR_DEFECTS | UNPRICED_USAGE):
        assert f"`{rule}`" in notes, rule


def test_a_subset_of_vendors_still_answers(demo_out: Path) -> None:
    # The demo with --vendor: the other tables have no files, the view still answers (their rows: none).
    only = ExportsFile(exports=(demo_exports().get("kore-demo"),))
    connection = query.connect(demo_out / "nothing-here", only)
    assert connection.execute(f"SELECT count(*) FROM {VIEW_NAME}").fetchone() == (0,)
