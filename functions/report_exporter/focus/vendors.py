"""Which rows of each vendor's curated table become FOCUS charges, and how their columns map.

One SELECT per charge kind (a *branch*), all with the columns of :data:`BRANCH_COLUMNS`, in that order; the
view (``view.py``) unions them, prices them and casts them to the FOCUS columns. The choices, per vendor:

- Particle: one charge per device and day (``particle_data_operations``); metric ``data_operations``; priced
  by the export's rate card.
- HERE: one per report row (item, app, org, day or month; ``here_usage``); metric: the item's name; quantity
  ``usage_value``, pricing quantity ``billable_value``; priced by the rate card on the billable value.
- Telnyx: one per report row (product and combination of the requested dimensions; ``telnyx_usage``); metric:
  the export's first metric other than ``cost``; cost: Telnyx's own ``cost`` (else a rate card).
- Senet: one per Application and month (``senet_application_month``, metric ``active_devices``) and one per
  device, month and direction (``senet_device_month``, metrics ``uplinks`` and ``downlinks``); rate card.
- KORE: one per usage record and section (``kore_usage_records``, metrics ``data`` and ``commands``); cost:
  KORE's ``data_billed`` / ``commands_billed``.

Senet's summary also counts uplink and downlink packets; they are taken from the per-device details only, so
that no packet is counted twice. Every branch reads its table's ``export`` and ``period`` partitions.

Keep to SQL that Athena (Trino) and DuckDB both read the same way (``report_exporter/local/query.py`` closes
the few gaps): no ``element_at`` (DuckDB answers a list), a map subscript only for a key known to be present
(Trino fails on a missing one), no NULL inside ``greatest``/``least`` (DuckDB ignores it, Trino answers NULL),
a map cast to JSON only with its keys in order (Trino sorts them, DuckDB keeps the map's order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from report_exporter.focus.columns import AMOUNT
from report_exporter.models.exports import ExportSpec, HereExport, ParticleExport, TelnyxExport, VendorName
from report_exporter.models.exports.kore import FOCUS_METRICS as KORE_METRICS
from report_exporter.models.exports.particle import FOCUS_METRICS as PARTICLE_METRICS
from report_exporter.models.exports.senet import FOCUS_METRICS as SENET_METRICS

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

PROVIDERS = {
    VendorName.PARTICLE: "Particle",
    VendorName.HERE: "HERE Technologies",
    VendorName.TELNYX: "Telnyx",
    VendorName.SENET: "Senet",
    VendorName.KORE: "KORE Wireless",
}
"""ProviderName, PublisherName and InvoiceIssuerName: each vendor sells, publishes and invoices its own service."""

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
            "provider": literal(PROVIDERS[self.vendor]),
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


def _accounts(exports: Sequence[ExportSpec], vendor: VendorName) -> dict[str, str]:
    """The billing account of each configured export whose vendor does not report one in its rows."""
    accounts: dict[str, str] = {}
    for export in exports:
        if isinstance(export, ParticleExport) and vendor is VendorName.PARTICLE and export.scope == "org":
            accounts[export.name] = export.org
        elif isinstance(export, HereExport) and vendor is VendorName.HERE:
            accounts[export.name] = export.realm
    return accounts


def particle(exports: Sequence[ExportSpec]) -> list[Branch]:
    (metric,) = PARTICLE_METRICS
    account = by_export(_accounts(exports, VendorName.PARTICLE), "{t}.export")
    return [
        Branch(
            VendorName.PARTICLE,
            "particle_data_operations",
            {
                "metric": literal(metric),
                # An org-scope export reads its organization; a user-scope one the (unnamed) user account.
                "billing_account_id": account,
                "sub_account_id": "{t}.product_id",
                "sub_account_name": "{t}.product_name",
                "resource_id": "{t}.device_id",
                "resource_name": "{t}.device_name",
                "resource_type": "'Device'",
                "service_name": "'Particle Device Cloud'",
                "service_category": "'Internet of Things'",
                "sku_id": literal(f"particle:{metric}"),
                "charge_description": "'Data operations of one device in one day'",
                "charge_start": "{t}.usage_date",
                "charge_end": "CAST({t}.usage_date AS TIMESTAMP) + INTERVAL '1' DAY",
                "consumed_quantity": "{t}.data_operations",
                "consumed_unit": "'Data Operations'",
                "pricing_quantity": "{t}.data_operations",
                "pricing_unit": "'Data Operations'",
                "dimensions": json_object({
                    "connectivity": "{t}.connectivity",
                    "device_os": "{t}.device_os",
                    "firmware_version": "{t}.firmware_version",
                    "report_type": "{t}.report_type",
                }),
            },
        )
    ]


def here(exports: Sequence[ExportSpec]) -> list[Branch]:
    account = by_export(_accounts(exports, VendorName.HERE), "{t}.export")
    # Day or month detail dates each row; a summarized report's rows cover the whole month.
    start = (
        "COALESCE(CASE {t}.detail_level WHEN 'day' THEN date_trunc('day', CAST({t}.usage_datetime AS TIMESTAMP)) "
        "WHEN 'month' THEN date_trunc('month', CAST({t}.usage_datetime AS TIMESTAMP)) END, " + PERIOD_START + ")"
    )
    end = (
        "COALESCE(CASE {t}.detail_level "
        "WHEN 'day' THEN date_trunc('day', CAST({t}.usage_datetime AS TIMESTAMP)) + INTERVAL '1' DAY "
        "WHEN 'month' THEN date_trunc('month', CAST({t}.usage_datetime AS TIMESTAMP)) + INTERVAL '1' MONTH END, "
        + PERIOD_END + ")"
    )
    return [
        Branch(
            VendorName.HERE,
            "here_usage",
            {
                "metric": "{t}.item_name",
                "billing_account_id": account,
                "sub_account_id": "{t}.org_id",
                "sub_account_name": "{t}.org_name",
                "resource_id": "{t}.app_id",
                "resource_name": "{t}.app_name",
                "resource_type": "CASE WHEN {t}.app_id IS NOT NULL THEN 'App' END",
                "service_name": "{t}.category",
                "service_category": "'Other'",
                "sku_id": "{t}.feature_id",
                "charge_description": "{t}.item_name",
                "charge_start": start,
                "charge_end": end,
                "consumed_quantity": "{t}.usage_value",
                "consumed_unit": "{t}.unit",
                # HERE's billable value is what it charges for (usage less what is not billable).
                "pricing_quantity": "{t}.billable_value",
                "pricing_unit": "{t}.unit",
                "tags": "CASE WHEN {t}.billing_tag IS NOT NULL THEN "
                        + json_object({"billingTag": "{t}.billing_tag"}) + " END",
                "dimensions": json_object({
                    "app_hrn": "{t}.app_hrn",
                    "billing_charge_number": "{t}.billing_charge_number",
                    "billing_subscription_id": "{t}.billing_subscription_id",
                    "charge_type": "{t}.charge_type",
                    "detail_level": "{t}.detail_level",
                    "feature_id": "{t}.feature_id",
                    "project_hrn": "{t}.project_hrn",
                    "resource_hrn": "{t}.resource_hrn",
                    "usage_type_code": "{t}.usage_type_code",
                }),
            },
        )
    ]


def telnyx(exports: Sequence[ExportSpec]) -> list[Branch]:
    metrics = {e.name: e.focus_metric for e in exports if isinstance(e, TelnyxExport) and e.focus_metric}
    metric = by_export(metrics, "CAST(NULL AS VARCHAR)")
    quantity = f"CASE WHEN contains(map_keys({{t}}.metrics), {metric}) THEN {{t}}.metrics[{metric}] END"
    return [
        Branch(
            VendorName.TELNYX,
            "telnyx_usage",
            {
                "metric": metric,
                "billing_account_id": "{t}.export",
                "sub_account_id": "{t}.user_id",
                "service_name": "{t}.product",
                "service_category": "'Networking'",
                "sku_id": f"'telnyx:' || {{t}}.product || ':' || {metric}",
                "charge_description": f"{{t}}.product || ' ' || {metric}",
                "charge_start": "{t}.requested_start",
                "charge_end": "{t}.requested_end",
                "consumed_quantity": quantity,
                "consumed_unit": metric,
                "pricing_quantity": quantity,
                "pricing_unit": metric,
                # The row's cost, as Telnyx reports it (the dataset's ``cost`` column, the metric 'cost').
                "vendor_cost": "{t}.cost",
                "vendor_currency": "{t}.currency",
                # Entries sorted first: Trino writes a map's keys sorted, DuckDB in the map's own order.
                "dimensions": "json_format(CAST(map_from_entries(array_sort(map_entries({t}.dimensions))) AS JSON))",
            },
        )
    ]


def senet(exports: Sequence[ExportSpec]) -> list[Branch]:
    active, uplinks, downlinks = SENET_METRICS
    application = {
        "metric": literal(active),
        "billing_account_id": "{t}.export",
        "sub_account_id": "{t}.application_eui",
        "resource_id": "{t}.application_eui",
        "resource_type": "'Application'",
        "service_name": "'Senet LoRaWAN Network'",
        "service_category": "'Internet of Things'",
        "sku_id": literal(f"senet:{active}"),
        "charge_description": "'Active devices of one Application in one month'",
        "charge_start": PERIOD_START,
        "charge_end": PERIOD_END,
        "consumed_quantity": "{t}.number_of_active_devices",
        "consumed_unit": "'Devices'",
        "pricing_quantity": "{t}.number_of_active_devices",
        "pricing_unit": "'Devices'",
        "dimensions": json_object({
            name: f"{{t}}.{name}"
            for name in (
                "number_of_devices", "number_of_reporting_devices", "number_of_devices_evaluated",
                "total_registrations", "total_activations", "total_deactivations", "total_up_packets",
                "total_down_packets", "total_security_sessions", "total_local_up_msg", "total_foreign_up_msg",
            )
        }),
    }

    def device(metric: str, column: str, direction: str) -> dict[str, str]:
        return {
            "metric": literal(metric),
            "billing_account_id": "{t}.export",
            "sub_account_id": "{t}.application_eui",
            "resource_id": "{t}.dev_eui",
            "resource_type": "'Device'",
            "service_name": "'Senet LoRaWAN Network'",
            "service_category": "'Internet of Things'",
            "sku_id": literal(f"senet:{metric}"),
            "charge_description": literal(f"{direction} packets of one device in one month"),
            "charge_start": PERIOD_START,
            "charge_end": PERIOD_END,
            "consumed_quantity": f"{{t}}.{column}",
            "consumed_unit": "'Packets'",
            "pricing_quantity": f"{{t}}.{column}",
            "pricing_unit": "'Packets'",
            "dimensions": json_object({
                "contract_id": "{t}.contract_id",
                "security_sessions": "{t}.security_sessions",
            }),
        }

    return [
        Branch(VendorName.SENET, "senet_application_month", application),
        Branch(VendorName.SENET, "senet_device_month", device(uplinks, "uplinks", "Uplink")),
        Branch(VendorName.SENET, "senet_device_month", device(downlinks, "downlinks", "Downlink")),
    ]


def kore(exports: Sequence[ExportSpec]) -> list[Branch]:
    data, commands = KORE_METRICS

    def section(metric: str, unit: str, description: str, parts: tuple[str, str]) -> dict[str, str]:
        return {
            "metric": literal(metric),
            "billing_account_id": "{t}.account_sid",
            "resource_id": "{t}.sim_sid",
            "resource_type": "CASE WHEN {t}.sim_sid IS NOT NULL THEN 'SIM' END",
            "service_name": "'KORE Programmable Wireless'",
            "service_category": "'Internet of Things'",
            "sku_id": literal(f"kore:{metric}"),
            "charge_description": literal(description),
            "charge_start": "{t}.period_start",
            "charge_end": "{t}.period_end",
            "consumed_quantity": f"{{t}}.{metric}_total",
            "consumed_unit": unit,
            "pricing_quantity": f"{{t}}.{metric}_total",
            "pricing_unit": unit,
            # What KORE billed for the record's section, in its billing units (a currency code).
            "vendor_cost": f"{{t}}.{metric}_billed",
            "vendor_currency": f"{{t}}.{metric}_billing_units",
            "dimensions": json_object({
                "granularity": "{t}.granularity",
                parts[0]: f"{{t}}.{metric}_{parts[0]}",
                parts[1]: f"{{t}}.{metric}_{parts[1]}",
                "total_consistent": f"{{t}}.{metric}_total_consistent",
            }),
        }

    return [
        Branch(VendorName.KORE, "kore_usage_records",
               section(data, "{t}.data_units", "Cellular data of one usage record", ("download", "upload"))),
        Branch(VendorName.KORE, "kore_usage_records",
               section(commands, "'Commands'", "SMS commands of one usage record", ("to_sim", "from_sim"))),
    ]


def branches(exports: Sequence[ExportSpec]) -> list[Branch]:
    """Every charge kind of every vendor, in vendor order."""
    return [*particle(exports), *here(exports), *telnyx(exports), *senet(exports), *kore(exports)]


__all__ = ["BRANCH_COLUMNS", "PROVIDERS", "Branch", "branches", "literal"]
