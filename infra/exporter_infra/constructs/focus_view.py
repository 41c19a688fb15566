"""The ``focus_usage`` view in the Glue catalog, encoded as Athena encodes the views it creates.

Athena keeps a view as a Glue table of type ``VIRTUAL_VIEW`` whose ``ViewOriginalText`` is
``/* Presto View: <base64 of a JSON document> */``; the document holds the SQL (``originalSql``), the
catalog and schema (the Glue database) its bare table names resolve in, and the output columns with their
Presto types. Athena checks the columns against what the SQL yields (a mismatch reads as "stale view"); the
view casts every column to its declared type (``report_exporter/focus/columns.py``), so they agree. Creating
the table is all `cdk deploy` needs: the view is queryable in the stage's workgroup right away, with no DDL.

The SQL is ``report_exporter.focus.view_sql`` for the deployed exports: the text the local DuckDB path runs.
Their rate cards are validated at synth first (:func:`validate_rate_cards`), so a rate card that slipped past the
loader (a config built in code) fails ``cdk synth`` naming the export and the field, as a bad schedule does.
Column names are lower case, as Athena stores them (Glue is case-insensitive), so Athena answers
``billedcost`` where DuckDB answers ``BilledCost``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from constructs import Construct, IDependable
from pydantic import ValidationError

from report_exporter.errors import InvalidExportError
from report_exporter.focus.columns import COLUMNS, FOCUS_VERSION
from report_exporter.focus.view import VIEW_NAME, view_sql
from report_exporter.models.exports import ExportSpec
from report_exporter.models.exports.rate_card import RateCard

CATALOG = "awsdatacatalog"


def validate_rate_cards(exports: Sequence[ExportSpec]) -> None:
    """Validate the rate cards the view's SQL is generated from, as the exports file's loader does.

    Raises:
        InvalidExportError: naming the export and each field of its rate card that is wrong.
    """
    for export in exports:
        if export.rate_card is None:
            continue
        try:
            RateCard.model_validate(export.rate_card.model_dump())
            export.check_rate_card_metrics()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(['rate_card', *map(str, error['loc'])])}: {error['msg']}" for error in exc.errors()
            )
        except ValueError as exc:
            problems = str(exc)
        else:
            continue
        raise InvalidExportError(f"export {export.name!r}: the focus_usage view cannot use it: {problems}")


def presto_view_text(sql: str, database_name: str) -> str:
    """``ViewOriginalText`` of an Athena view over ``database_name``."""
    document = {
        "originalSql": sql,
        "catalog": CATALOG,
        "schema": database_name,
        "columns": [{"name": column.name.lower(), "type": column.type} for column in COLUMNS],
    }
    encoded = base64.b64encode(json.dumps(document, ensure_ascii=False).encode("utf-8")).decode("ascii")
    return f"/* Presto View: {encoded} */"


def decode_view_text(text: str) -> dict[str, object]:
    """The JSON document of a ``ViewOriginalText`` (for tests and operators)."""
    prefix, suffix = "/* Presto View: ", " */"
    if not (text.startswith(prefix) and text.endswith(suffix)):
        raise ValueError("not an Athena (Presto) view text")
    decoded: dict[str, object] = json.loads(base64.b64decode(text[len(prefix):-len(suffix)]))
    return decoded


class FocusView(Construct):
    """The cross-vendor FOCUS view over the stage's dataset tables."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        database: glue.IDatabase,
        database_name: str,
        exports: Sequence[ExportSpec],
        tables: Iterable[IDependable] = (),
    ) -> None:
        super().__init__(scope, id_)
        validate_rate_cards(exports)
        self.sql = view_sql(exports)
        self.view = glue.CfnTable(
            self,
            "View",
            catalog_id=Stack.of(self).account,
            database_name=database.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=VIEW_NAME,
                description=(
                    f"report-exporter: every vendor's usage and cost as FOCUS {FOCUS_VERSION} charges "
                    "(README: One view across vendors)"
                ),
                table_type="VIRTUAL_VIEW",
                parameters={"presto_view": "true", "comment": "Presto View"},
                view_original_text=presto_view_text(self.sql, database_name),
                view_expanded_text="/* Presto View */",
                partition_keys=[],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(
                            name=column.name.lower(), type=column.hive_type, comment=column.description[:255]
                        )
                        for column in COLUMNS
                    ],
                    serde_info=glue.CfnTable.SerdeInfoProperty(),
                ),
            ),
        )
        for table in tables:
            self.view.node.add_dependency(table)
