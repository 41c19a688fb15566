"""What a vendor's FOCUS charges are made of: a :class:`Branch` is one SELECT over one curated table, with the
columns of :data:`BRANCH_COLUMNS` in that order. Each vendor's branches live in ``vendors/<vendor>/focus.py``;
``focus/vendors.py`` lists them; the view (``view.py``) unions them, prices them and casts them to the FOCUS
columns.

Keep to SQL that Athena (Trino) and DuckDB both read the same way (``report_exporter/local/query.py`` closes
the few gaps): no ``element_at`` (DuckDB answers a list), a map subscript only for a key known to be present
(Trino fails on a missing one), no NULL inside ``greatest``/``least`` (DuckDB ignores it, Trino answers NULL),
a map cast to JSON only with its keys in order (Trino sorts them, DuckDB keeps the map's order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from report_exporter.focus.columns import AMOUNT
from report_exporter.models.exports.base import VendorName
from report_exporter.vendors import FACTS

BRANCH_COLUMNS: dict[str, str] = {
    "vendor": "VARCHAR",
    "export": "VARCHAR",
    "period": "VARCHAR",
    "dataset": "VARCHAR",
    "metric": "VARCHAR",
    "provider": "VARCHAR",
    "billing_account_id": "VARCHAR",
    "sub_account_id": "VARCHAR",
    "sub_account_name": "VARCHAR",
    "resource_id": "VARCHAR",
    "resource_name": "VARCHAR",
    "resource_type": "VARCHAR",
    "service_name": "VARCHAR",
    "service_category": "VARCHAR",
    "sku_id": "VARCHAR",
    "charge_description": "VARCHAR",
    "charge_start": "TIMESTAMP",
    "charge_end": "TIMESTAMP",
    "consumed_quantity": AMOUNT.upper(),
    "consumed_unit": "VARCHAR",
    "pricing_quantity": AMOUNT.upper(),
    "pricing_unit": "VARCHAR",
    "vendor_cost": AMOUNT.upper(),
    "vendor_currency": "VARCHAR",
    "tags": "VARCHAR",
    "dimensions": "VARCHAR",
    "source_key": "VARCHAR",
    "report_id": "VARCHAR",
    "exported_at": "TIMESTAMP",
}
"""The columns every branch yields, in order, with the type each is cast to."""

PERIOD_START = "CAST({t}.period || '-01' AS TIMESTAMP)"
PERIOD_END = f"{PERIOD_START} + INTERVAL '1' MONTH"


def literal(value: str) -> str:
    """A SQL string literal (both dialects escape a quote by doubling it)."""
    return "'" + value.replace("'", "''") + "'"


def json_object(columns: Mapping[str, str]) -> str:
    """A JSON object (varchar) of ``key: expression`` pairs, keys sorted (Trino sorts a map's keys in JSON)."""
    keys = ", ".join(literal(key) for key in sorted(columns))
    values = ", ".join(f"CAST({columns[key]} AS VARCHAR)" for key in sorted(columns))
    return f"json_format(CAST(MAP(ARRAY[{keys}], ARRAY[{values}]) AS JSON))"


def by_export(values: Mapping[str, str], default: str) -> str:
    """A CASE on the row's export: the configured value of each export in ``values``, else ``default``."""
    if not values:
        return default
    whens = " ".join(f"WHEN {literal(name)} THEN {literal(value)}" for name, value in sorted(values.items()))
    return f"CASE {{t}}.export {whens} ELSE {default} END"


@dataclass(frozen=True)
class Branch:
    """One kind of charge: the rows of ``table`` (aliased ``t``), each column an expression over them."""

    vendor: VendorName
    table: str
    columns: dict[str, str]
    where: str = ""
    alias: str = field(default="t")

    def sql(self) -> str:
        unknown = set(self.columns) - set(BRANCH_COLUMNS)
        if unknown:
            raise ValueError(f"{self.table}: unknown branch column(s) {sorted(unknown)}")
        common = {
            "vendor": literal(self.vendor.value),
            "export": "{t}.export",
            "period": "{t}.period",
            "dataset": literal(self.table),
            "provider": literal(FACTS[self.vendor].provider),
            "source_key": "{t}.source_key",
            "report_id": "{t}.report_id",
            "exported_at": "{t}.exported_at",
        }
        values = common | self.columns
        items = [
            f"CAST({values[name].format(t=self.alias) if name in values else 'NULL'} AS {dtype}) AS {name}"
            for name, dtype in BRANCH_COLUMNS.items()
        ]
        select = ",\n    ".join(items)
        where = f"\n  WHERE {self.where.format(t=self.alias)}" if self.where else ""
        return f"  SELECT\n    {select}\n  FROM {self.table} AS {self.alias}{where}"


__all__ = ["BRANCH_COLUMNS", "PERIOD_END", "PERIOD_START", "Branch", "by_export", "json_object", "literal"]
