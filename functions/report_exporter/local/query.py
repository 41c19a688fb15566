"""DuckDB over the local Parquet mirror, with one view per dataset named like its Athena table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from report_exporter.datasets import DATASETS


def connect(out_dir: Path) -> Any:
    """A DuckDB connection with a view per dataset that has files under ``out_dir/curated``.

    ``export`` and ``period`` come from the Hive-style path, as Athena's partition projection gives them.
    """
    import duckdb

    con = duckdb.connect()
    for name in DATASETS:
        folder = out_dir / "curated" / name
        if any(folder.glob("export=*/period=*/*.parquet")):
            pattern = str(folder / "export=*" / "period=*" / "*.parquet").replace("'", "''")
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, "
                "hive_types = {'export': 'VARCHAR', 'period': 'VARCHAR'})"
            )
    return con


def rows(con: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = con.execute(sql)
    return [d[0] for d in cursor.description], cursor.fetchall()
