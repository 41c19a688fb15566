"""Benchmark: a HERE usage report through DownloadReport and WriteParquet, against pandas read_csv + to_parquet.

Run from the repository root (see bench/README.md for how it measures)::

    .venv/bin/python bench/bench_here.py                # 1,000,000 rows, 3 runs per variant
    .venv/bin/python bench/bench_here.py --rows 100000 --runs 1

The input is generated once into ``bench/data/`` (gitignored) by the HERE simulator's own row generator:
a ``.csv.gz`` with every value double-quoted, values with commas, doubled quotes, non-ASCII and empty
fields (~277 bytes a row before gzip). The world process serves it from disk at the report's ``/output``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness

PERIOD = "2026-10"
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
# Header token -> column of here_usage, for the pandas baseline.
NAMES = {"usageDateTime": "usage_datetime", "realmId": "org_id", "category": "category", "appId": "app_id",
         "featureId": "feature_id", "billingSubscriptionId": "billing_subscription_id",
         "resourceHrn": "resource_hrn", "name": "item_name", "valueDriver": "unit", "projectHrn": "project_hrn",
         "billingTag": "billing_tag", "billableValue": "billable_value",
         "billingChargeNumber": "billing_charge_number", "usageValue": "usage_value"}


def generate(path: Path, rows: int) -> None:
    from report_exporter.vendors.here.simulator import HereSimulator

    def body(rows: int) -> Iterator[bytes]:
        sim = HereSimulator(rows=rows)
        yield from sim.gzip_body(sim.add_report(START, END, detail="day"))

    harness.generate_once(path, rows, body)


def serve(source: Path) -> dict[str, Any]:
    """In the world process: a HERE simulator (OAuth token endpoint, report status) whose output is ``source``."""
    from dataclasses import dataclass

    from report_exporter.vendors.here.simulator import HereSimulator, Report

    @dataclass
    class FileHere(HereSimulator):
        source: str = ""

        def gzip_body(self, report: Report) -> Iterator[bytes]:
            return harness.file_chunks(self.source)

    here = FileHere(source=str(source))
    here.start()
    report = here.add_report(START, END, detail="day")
    return {"vendor": here.base_url, "report_id": report.id, "credentials": here.credentials()}


def plan(world: dict[str, Any]) -> Any:
    from datetime import timedelta

    from report_exporter.models.exports import HereExport, month_window
    from report_exporter.models.payloads import RunPlan

    export = HereExport(name="here-bench", secret_name="here/bench", realm="org123456789", detail_level="day",
                        base_url=world["vendor"], token_url=f"{world['vendor']}/oauth2/token")
    now = datetime(2026, 11, 3, 6, tzinfo=UTC)
    return RunPlan(export=export, window=month_window(PERIOD, "UTC"), execution_id=f"bench:here-bench-{PERIOD}",
                   started_at=now, deadline=now + timedelta(hours=6))


def download(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    from report_exporter.vendors.here.adapter import HereAdapter

    return harness.prepare_download(world, plan(world), HereAdapter)


def parquet(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    return harness.prepare_parquet(world, plan)


def convert(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    return harness.prepare_convert("report_exporter.vendors.here.dataset", plan(world), world["report_id"], source,
                                   scratch)


def pandas(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    import re
    from decimal import Decimal

    import pandas as pd
    import pyarrow.parquet  # noqa: F401 - to_parquet's engine, imported before the post-import mark

    out = scratch / "pandas.parquet"

    def work() -> dict[str, Any]:
        frame = pd.read_csv(source, compression="gzip", dtype=str, keep_default_na=False, na_values=[""])
        frame.columns = [NAMES[re.search(r"\(([^()]+)\)\s*$", c).group(1)] for c in frame.columns]  # type: ignore[union-attr]
        for column in ("usage_value", "billable_value"):
            frame[column] = frame[column].map(Decimal, na_action="ignore")
        frame["usage_datetime"] = pd.to_datetime(frame["usage_datetime"], utc=True)
        frame.to_parquet(out, engine="pyarrow", compression="zstd", index=False)
        return {"rows": len(frame), "bytes": out.stat().st_size, "path": str(out)}

    return work


# The peers (duckdb, polars) type the columns as here_usage does: UTC timestamps, decimal(38,18) amounts.
_LABELS = {"usageDateTime": "Date and time", "realmId": "Org ID", "category": "Category", "appId": "App ID",
           "featureId": "Item", "billingSubscriptionId": "Subscription ID", "resourceHrn": "Resource ID",
           "name": "Item description", "valueDriver": "Unit", "projectHrn": "Project ID", "billingTag": "Billing tag",
           "billableValue": "Usage Amount", "billingChargeNumber": "Charge Number", "usageValue": "Usage Amount"}
_AMOUNTS = {"usage_value", "billable_value"}


def _label(token: str) -> str:
    return f"{_LABELS[token]} ({token})"


def duckdb(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    # (A timestamp without zone: duckdb's TIMESTAMPTZ needs its ICU extension; the cost is the same.)
    select = ", ".join(
        f'CAST("{_label(token)}" AS TIMESTAMP) AS {name}' if name == "usage_datetime"
        else f'CAST("{_label(token)}" AS DECIMAL(38, 18)) AS {name}' if name in _AMOUNTS
        else f'"{_label(token)}" AS {name}'
        for token, name in NAMES.items())
    return harness.prepare_duckdb(source, scratch, select)


def polars(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    def columns(pl: Any) -> list[Any]:
        return [pl.col(_label(token)).str.to_datetime("%Y-%m-%dT%H:%M:%S", time_zone="UTC").alias(name)
                if name == "usage_datetime"
                else pl.col(_label(token)).cast(pl.Decimal(38, 18)).alias(name) if name in _AMOUNTS
                else pl.col(_label(token)).alias(name)
                for token, name in NAMES.items()]

    return harness.prepare_polars(source, scratch, columns)


def pyarrow(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    import pyarrow as pa

    from report_exporter.vendors.here.dataset import DATASET

    # (A timestamp without zone, as for duckdb: Arrow's CSV reader wants an offset in the text for a zoned type.)
    types = {_label(token): pa.timestamp("ms") if name == "usage_datetime" else DATASET.columns.field(name).type
             for token, name in NAMES.items() if name == "usage_datetime" or name in _AMOUNTS}
    return harness.prepare_pyarrow(source, scratch, types, {_label(token): name for token, name in NAMES.items()},
                                   row_group_size=DATASET.row_group_size)


VENDOR = harness.Vendor(
    name="here",
    title="HERE usage report",
    script=str(Path(__file__).resolve()),
    suffix=".csv.gz",
    variants={
        "download": "DownloadReport: HERE /output -> S3 raw (multipart)",
        "parquet": "WriteParquet: S3 raw .csv.gz -> S3 Parquet (logic as deployed)",
        "convert": "HERE reader -> local Parquet (no S3; same input as pandas)",
        "duckdb": "duckdb read_csv -> COPY TO parquet (local, peer)",
        "polars": "polars scan_csv -> sink_parquet (local, peer)",
        "pyarrow": "pyarrow read_csv -> write_table, no checks or lineage (local, the library's floor)",
        "pandas": "pandas read_csv + to_parquet (local, baseline)",
    },
    generate=generate,
    serve=serve,
    prepare={"download": download, "parquet": parquet, "convert": convert, "duckdb": duckdb, "polars": polars,
             "pyarrow": pyarrow, "pandas": pandas},
    check_column="billable_value",
    peak_goal=0.25,
)

if __name__ == "__main__":
    harness.main(VENDOR)
