"""Benchmark: a Particle data-operations report through DownloadReport and WriteParquet, against pandas.

Run from the repository root (see bench/README.md for how it measures)::

    .venv/bin/python bench/bench_particle.py            # 1,000,000 rows, 3 runs per variant
    .venv/bin/python bench/bench_particle.py --rows 100000 --runs 1

The input is generated once into ``bench/data/`` (gitignored) by the Particle simulator itself: the bytes
its signed download link serves, with the preamble line, the header and its rows (``"Tracker 7, fleet"``:
quoted values with commas; ~105 bytes a row). One row per device and day: a 1M-row October report has
32,259 devices, about the ~33k distinct device ids of a real-sized org. The world process serves
the file from disk behind the simulator's real status and signed-link checks, so DownloadReport runs the
ParticleAdapter as deployed: status -> signed link -> stream into an S3 multipart upload.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import harness

PERIOD = "2026-10"
START, END = date(2026, 10, 1), date(2026, 10, 31)
DAYS = (END - START).days + 1
# CSV label -> (particle_data_operations column, pandas dtype) for the pandas baseline.
COLUMNS = {"Date": ("usage_date", "str"), "Device ID": ("device_id", "str"), "Device Name": ("device_name", "str"),
           "Product ID": ("product_id", "Int64"), "Product Name": ("product_name", "str"),
           "Connectivity": ("connectivity", "str"), "Data Operations": ("data_operations", "Int64"),
           "Firmware Version": ("firmware_version", "str"), "Device OS": ("device_os", "str")}


def _simulator(rows: int) -> Any:
    """The simulator whose report is the input: a preamble line, then one row per device and day."""
    from report_exporter.vendors.particle.simulator import ParticleSimulator

    return ParticleSimulator(rows=rows, devices=max(1, math.ceil(rows / DAYS)), preamble=True, pending_polls=0)


def _get(sim: Any, url: str, token: str | None = None) -> Any:
    """One request straight into the simulator's handler (no socket): what its HTTP server would answer."""
    from urllib.parse import parse_qs, urlsplit

    from report_exporter.local.simulators.base import SimRequest

    parts = urlsplit(url)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return sim.handle(SimRequest("GET", parts.path, parse_qs(parts.query), headers, b""))


def generate(path: Path, rows: int) -> None:
    def body(rows: int) -> Iterator[bytes]:
        sim = _simulator(rows)
        report_id = sim.add_ready_report(START, END)
        status = json.loads(_get(sim, f"/v1/user/usage_reports/{report_id}", sim.token).body)
        download = _get(sim, status["data"]["attributes"]["download_url"])
        assert download.status == 200, download.status
        yield from download.body

    harness.generate_once(path, rows, body)


def serve(source: Path) -> dict[str, Any]:
    """In the world process: the Particle simulator, whose signed download link serves ``source``."""
    from dataclasses import dataclass

    from report_exporter.local.simulators.base import SimRequest, SimResponse
    from report_exporter.vendors.particle.simulator import ParticleSimulator

    @dataclass
    class FileParticle(ParticleSimulator):
        source: str = ""

        def _download(self, request: SimRequest) -> SimResponse:
            answer = super()._download(request)  # the signature, token and state checks
            if answer.status == 200:
                answer = SimResponse.text(harness.file_chunks(self.source), "text/csv")
            return answer

    sim = FileParticle(source=str(source), pending_polls=0)
    sim.start()
    report_id = sim.add_ready_report(START, END)
    return {"vendor": sim.base_url, "report_id": report_id, "credentials": sim.credentials()}


def plan(world: dict[str, Any]) -> Any:
    from datetime import timedelta

    from report_exporter.models.exports import ParticleExport, month_window
    from report_exporter.models.payloads import RunPlan

    export = ParticleExport(name="particle-bench", secret_name="particle/bench", base_url=world["vendor"],
                            service_agreement_id="42")
    now = datetime(2026, 11, 3, 6, tzinfo=UTC)
    return RunPlan(export=export, window=month_window(PERIOD, "UTC"),
                   execution_id=f"bench:particle-bench-{PERIOD}", started_at=now, deadline=now + timedelta(hours=6))


def download(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    from report_exporter.vendors.particle.adapter import ParticleAdapter

    return harness.prepare_download(world, plan(world), ParticleAdapter)


def parquet(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    return harness.prepare_parquet(world, plan)


def convert(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    return harness.prepare_convert("report_exporter.vendors.particle.dataset", plan(world), world["report_id"], source,
                                   scratch)


def pandas(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    import pandas as pd
    import pyarrow as pa

    from report_exporter.vendors.particle.dataset import COLUMNS as TYPED

    # The same typed columns as particle_data_operations (date32, int64, strings); to_parquet casts to them.
    schema = pa.schema([TYPED.field(name) for name, _ in COLUMNS.values()])
    out = scratch / "pandas.parquet"

    def work() -> dict[str, Any]:
        frame = pd.read_csv(source, skiprows=1, dtype={label: dtype for label, (_, dtype) in COLUMNS.items()},
                            keep_default_na=False, na_values=[""])
        frame = frame.rename(columns={label: name for label, (name, _) in COLUMNS.items()})
        frame["usage_date"] = pd.to_datetime(frame["usage_date"], format="%Y-%m-%d")
        frame.to_parquet(out, engine="pyarrow", compression="zstd", index=False, schema=schema)
        return {"rows": len(frame), "bytes": out.stat().st_size, "path": str(out)}

    return work


# The typed columns of particle_data_operations, for the peers (duckdb, polars).
_INTS = {"Product ID", "Data Operations"}


def duckdb(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    select = ", ".join(
        f'CAST("{label}" AS DATE) AS {name}' if name == "usage_date"
        else f'CAST("{label}" AS BIGINT) AS {name}' if label in _INTS else f'"{label}" AS {name}'
        for label, (name, _) in COLUMNS.items())
    return harness.prepare_duckdb(source, scratch, select, skip=1)


def polars(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    def columns(pl: Any) -> list[Any]:
        return [pl.col(label).str.to_date("%Y-%m-%d").alias(name) if name == "usage_date"
                else pl.col(label).cast(pl.Int64).alias(name) if label in _INTS else pl.col(label).alias(name)
                for label, (name, _) in COLUMNS.items()]

    return harness.prepare_polars(source, scratch, columns, skip=1)


def pyarrow(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    from report_exporter.vendors.particle.dataset import DATASET

    types = {label: DATASET.columns.field(name).type for label, (name, _) in COLUMNS.items()}
    return harness.prepare_pyarrow(source, scratch, types, {label: name for label, (name, _) in COLUMNS.items()},
                                   skip=1, row_group_size=DATASET.row_group_size)


VENDOR = harness.Vendor(
    name="particle",
    title="Particle data-operations report",
    script=str(Path(__file__).resolve()),
    suffix=".csv",
    variants={
        "download": "DownloadReport: status -> signed link -> S3 raw (multipart)",
        "parquet": "WriteParquet: S3 raw .csv -> S3 Parquet (logic as deployed)",
        "convert": "Particle reader -> local Parquet (no S3; same input as pandas)",
        "duckdb": "duckdb read_csv -> COPY TO parquet (local, peer)",
        "polars": "polars scan_csv -> sink_parquet (local, peer)",
        "pyarrow": "pyarrow read_csv -> write_table, no checks or lineage (local, the library's floor)",
        "pandas": "pandas read_csv + to_parquet (local, baseline)",
    },
    generate=generate,
    serve=serve,
    prepare={"download": download, "parquet": parquet, "convert": convert, "duckdb": duckdb, "polars": polars,
             "pyarrow": pyarrow, "pandas": pandas},
    check_column="data_operations",
    peak_goal=0.5,
)

if __name__ == "__main__":
    harness.main(VENDOR)
