"""DuckDB over the local Parquet mirror, with one view per dataset named like its Athena table, and the
cross-vendor ``focus_usage`` view with the very SQL text Athena runs.

Athena (Trino) and DuckDB read that text alike once the connection has the shims of :func:`_athena_dialect`,
the one place where the two dialects' differences are handled:

=============================  ====================================  ========================================
what                           Athena (Trino)                        DuckDB here
=============================  ====================================  ========================================
``json_format(json)``          JSON value -> varchar                 a macro: ``CAST(json AS VARCHAR)``
Parquet ``timestamp`` (UTC)    ``timestamp``, UTC wall clock          ``timestamptz``; the session time zone
                                                                     is UTC, so ``CAST(.. AS TIMESTAMP)`` is
                                                                     the same wall clock
a dataset with no files        the table exists (Glue), no rows      an empty view of the dataset's schema
=============================  ====================================  ========================================

The rest of the view's SQL keeps to what both engines read the same way (``report_exporter/focus/branch.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from report_exporter.datasets.base import PARTITION_KEYS
from report_exporter.datasets.registry import DATASETS
from report_exporter.focus.columns import COLUMNS, TIMESTAMP
from report_exporter.focus.view import VIEW_NAME, view_sql
from report_exporter.models.exports import ExportsFile


def _athena_dialect(con: Any) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE MACRO json_format(value) AS CAST(value AS VARCHAR)")


def connect(out_dir: Path, exports: ExportsFile | None = None) -> Any:
    """A DuckDB connection with a view per dataset over ``out_dir/curated``, and ``focus_usage`` for ``exports``.

    ``export`` and ``period`` come from the Hive-style path, as Athena's partition projection gives them. A
    dataset with no files gets an empty view of its schema, as its Glue table answers before its first run.
    """
    import duckdb

    con = duckdb.connect()
    _athena_dialect(con)
    for name, dataset in DATASETS.items():
        folder = out_dir / "curated" / name
        if any(folder.glob("export=*/period=*/*.parquet")):
            pattern = str(folder / "export=*" / "period=*" / "*.parquet").replace("'", "''")
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{pattern}', hive_partitioning = true, "
                "hive_types = {'export': 'VARCHAR', 'period': 'VARCHAR'})"
            )
        else:
            empty = pa.schema([*dataset.schema, *(pa.field(key, pa.string()) for key, _ in PARTITION_KEYS)])
            con.register(f"_empty_{name}", empty.empty_table())
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM _empty_{name}")
    if exports is not None:
        con.execute(f"CREATE VIEW {VIEW_NAME} AS {view_sql(exports.exports)}")
    return con


FOCUS_DATETIME = "%Y-%m-%dT%H:%M:%SZ"
"""FOCUS date/time format: ISO 8601 in UTC with a Z (FOCUS 1.0, "Date/Time Format")."""


def write_focus_csv(con: Any, path: Path, *, where: str = "") -> int:
    """Write the ``focus_usage`` view's rows to ``path`` as a FOCUS CSV file; returns the rows written.

    A header of the column IDs, date/times in :data:`FOCUS_DATETIME`, amounts as exact decimals, nulls empty.
    ``where`` (SQL over the view's columns) keeps some rows only.
    """
    columns = ", ".join(
        f"strftime({c.name}, '{FOCUS_DATETIME}') AS {c.name}" if c.type == TIMESTAMP else c.name for c in COLUMNS
    )
    condition = f" WHERE {where}" if where else ""
    target = str(path).replace("'", "''")
    con.execute(f"COPY (SELECT {columns} FROM {VIEW_NAME}{condition}) TO '{target}' (HEADER, DELIMITER ',')")
    return int(con.execute(f"SELECT count(*) FROM {VIEW_NAME}{condition}").fetchone()[0])


def rows(con: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = con.execute(sql)
    return [d[0] for d in cursor.description], cursor.fetchall()
