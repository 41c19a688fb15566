"""The columns of the ``focus_usage`` view: FOCUS 1.0 column IDs, then ``x_`` columns for what FOCUS lacks.

One list is the source for the view's final projection (every column is cast to its declared type, so the
Glue view's declared columns are exactly what Athena's analyzer derives), the Glue view's two column lists
(Presto types in the view JSON, Hive types in the storage descriptor), and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

FOCUS_VERSION = "1.0"
"""The FOCUS version the view follows (https://focus.finops.org/focus-specification/v1-0/)."""

VARCHAR = "varchar"
TIMESTAMP = "timestamp"
AMOUNT = "decimal(38,18)"
"""Every cost, quantity and price: the curated tables' exact amount type (datasets/values.py)."""

_HIVE = {VARCHAR: "string", TIMESTAMP: "timestamp", AMOUNT: AMOUNT}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """The SQL (Trino/Presto) type; DuckDB reads the same names."""
    description: str

    @property
    def hive_type(self) -> str:
        return _HIVE[self.type]


COLUMNS: tuple[Column, ...] = (
    Column("AvailabilityZone", VARCHAR, "Always null: no vendor reports zones"),
    Column("BilledCost", AMOUNT, "The vendor's cost (Telnyx cost, KORE billed), else the rate card's, else null"),
    Column("BillingAccountId", VARCHAR, "The vendor account the export reads (per vendor: README)"),
    Column("BillingAccountName", VARCHAR, "Always null: no vendor reports an account name"),
    Column("BillingCurrency", VARCHAR, "Currency of the costs: the vendor's or the rate card's; null when unpriced"),
    Column("BillingPeriodEnd", TIMESTAMP, "First instant (UTC) after the exported month (exclusive)"),
    Column("BillingPeriodStart", TIMESTAMP, "First instant (UTC) of the exported month"),
    Column("ChargeCategory", VARCHAR, "Always 'Usage'"),
    Column("ChargeClass", VARCHAR, "Always null (no corrections)"),
    Column("ChargeDescription", VARCHAR, "What the row charges for, in words"),
    Column("ChargeFrequency", VARCHAR, "Always 'Usage-Based'"),
    Column("ChargePeriodEnd", TIMESTAMP, "End (exclusive, UTC) of the time the row's usage covers"),
    Column("ChargePeriodStart", TIMESTAMP, "Start (inclusive, UTC) of the time the row's usage covers"),
    Column("CommitmentDiscountCategory", VARCHAR, "Always null: no commitment discounts"),
    Column("CommitmentDiscountId", VARCHAR, "Always null: no commitment discounts"),
    Column("CommitmentDiscountName", VARCHAR, "Always null: no commitment discounts"),
    Column("CommitmentDiscountStatus", VARCHAR, "Always null: no commitment discounts"),
    Column("CommitmentDiscountType", VARCHAR, "Always null: no commitment discounts"),
    Column("ConsumedQuantity", AMOUNT, "The usage as the vendor reports it, in ConsumedUnit"),
    Column("ConsumedUnit", VARCHAR, "The unit of ConsumedQuantity"),
    Column("ContractedCost", AMOUNT, "Equal to BilledCost: no discounts are known"),
    Column("ContractedUnitPrice", AMOUNT, "Always null: a row may span several tiers of a rate card"),
    Column("EffectiveCost", AMOUNT, "Equal to BilledCost: no upfront fees or discounts are known"),
    Column("InvoiceIssuerName", VARCHAR, "The vendor"),
    Column("ListCost", AMOUNT, "Equal to BilledCost: no list prices are known apart from the cost"),
    Column("ListUnitPrice", AMOUNT, "Always null: a row may span several tiers of a rate card"),
    Column("PricingCategory", VARCHAR, "'Standard' when the row has a cost, else null"),
    Column("PricingQuantity", AMOUNT, "What the price applies to (HERE: billable value; else ConsumedQuantity)"),
    Column("PricingUnit", VARCHAR, "The unit of PricingQuantity"),
    Column("ProviderName", VARCHAR, "The vendor"),
    Column("PublisherName", VARCHAR, "The vendor"),
    Column("RegionId", VARCHAR, "Always null: no vendor reports regions"),
    Column("RegionName", VARCHAR, "Always null: no vendor reports regions"),
    Column("ResourceId", VARCHAR, "The device, SIM, app or Application used; null when not per resource"),
    Column("ResourceName", VARCHAR, "The resource's display name, when the vendor reports one"),
    Column("ResourceType", VARCHAR, "Device, SIM, App or Application"),
    Column("ServiceCategory", VARCHAR, "FOCUS 1.0 service category"),
    Column("ServiceName", VARCHAR, "The vendor's offering"),
    Column("SkuId", VARCHAR, "The vendor's billed item: <vendor>:<metric>, HERE's featureId"),
    Column("SkuPriceId", VARCHAR, "The price applied: SkuId (vendor cost), rate-card:<export>:<metric>, or null"),
    Column("SubAccountId", VARCHAR, "Particle product, HERE org, Telnyx managed user, Senet Application"),
    Column("SubAccountName", VARCHAR, "The sub-account's display name, when the vendor reports one"),
    Column("Tags", VARCHAR, "JSON object of the row's user tags (HERE billingTag); null when none"),
    Column("x_Vendor", VARCHAR, "The exporter's vendor name (particle, here, telnyx, senet, kore)"),
    Column("x_Export", VARCHAR, "The export (exports.toml) the row came from"),
    Column("x_Period", VARCHAR, "The exported month, yyyy-MM (the tables' period partition)"),
    Column("x_Dataset", VARCHAR, "The curated table the row came from"),
    Column("x_Metric", VARCHAR, "What ConsumedQuantity counts; the key of the export's rate card"),
    Column("x_CostSource", VARCHAR, "'Vendor' (the vendor's cost), 'RateCard' (the export's rate card) or null"),
    Column("x_Dimensions", VARCHAR, "JSON object of the vendor's own dimensions that FOCUS has no column for"),
    Column("x_SourceKey", VARCHAR, "The raw S3 object the row came from"),
    Column("x_ReportId", VARCHAR, "The vendor's report id, when it has one"),
    Column("x_ExportedAt", TIMESTAMP, "When the exporter wrote the row's Parquet file"),
)

NAMES = tuple(column.name for column in COLUMNS)
FOCUS_COLUMNS = tuple(name for name in NAMES if not name.startswith("x_"))
