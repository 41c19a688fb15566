"""An export's optional rate card: what its usage costs when the vendor's report carries no cost.

Prices one metric of the export's FOCUS rows (``x_Metric`` in the ``focus_usage`` view, README "One view
across vendors") per calendar month and export:

.. code-block:: toml

    [exports.rate_card]
    currency = "USD"

    [exports.rate_card.metrics.data_operations]
    included_quantity = 100000          # free each month
    tiers = [
      { up_to = 1000000, unit_price = "0.0004" },   # the month's quantity from 100,000 up to 1,000,000
      { unit_price = "0.0002" },                    # everything above
    ]

    [exports.rate_card.metrics.active_devices]
    unit_price = "0.50"                 # one price for every unit (no tiers)

Tiers are graduated: ``up_to`` bounds count the month's cumulative quantity from zero, the included quantity
comes first at no cost, and each unit is charged at the price of the tier it falls in. Prices and quantities
are exact decimals: write them as strings (``"0.0004"``) or as TOML numbers (read through their shortest
decimal form). The view prices each row with the slice of the month's cumulative quantity it adds, so the rows
of a month sum to exactly the month's tiered price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# At most 9 decimals and 10 integer digits: the view multiplies a DECIMAL(29,9) quantity by a DECIMAL(19,9)
# price into the DECIMAL(38,18) of the cost columns, exactly.
UnitPrice = Annotated[Decimal, Field(ge=0, max_digits=19, decimal_places=9, allow_inf_nan=False)]
# The view's quantities are DECIMAL(38,18): 20 integer digits, 18 decimals.
Quantity = Annotated[Decimal, Field(ge=0, max_digits=38, decimal_places=18, allow_inf_nan=False)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
MetricName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MAX_TIERS = 20


class Frozen(BaseModel):
    # The same configuration as the export models' (models/exports/base.py imports this module).
    model_config = ConfigDict(frozen=True, extra="forbid")


class Segment(NamedTuple):
    """A stretch ``[lower, upper)`` of the month's cumulative quantity and its unit price (upper None: no end)."""

    lower: Decimal
    upper: Decimal | None
    unit_price: Decimal


class Tier(Frozen):
    up_to: Quantity | None = None
    """Where the tier ends, in the month's cumulative quantity (exclusive); only the last tier has none."""
    unit_price: UnitPrice


class MetricRate(Frozen):
    """The price of one metric: ``unit_price`` alone, or graduated ``tiers``; ``included_quantity`` is free."""

    unit_price: UnitPrice | None = None
    tiers: tuple[Tier, ...] = Field(default=(), max_length=MAX_TIERS)
    included_quantity: Quantity = Decimal(0)

    @model_validator(mode="after")
    def _one_price(self) -> MetricRate:
        if (self.unit_price is None) == (not self.tiers):
            raise ValueError("give either 'unit_price' or 'tiers', not both and not neither")
        if self.tiers:
            *bounded, last = self.tiers
            if last.up_to is not None:
                raise ValueError("the last tier has no 'up_to': it prices everything above the tier before it")
            bounds = [tier.up_to for tier in bounded if tier.up_to is not None]
            if len(bounds) != len(bounded):
                raise ValueError("every tier but the last needs 'up_to'")
            if any(b <= a for a, b in zip([Decimal(0), *bounds], bounds, strict=False)):
                raise ValueError("tiers' 'up_to' must be greater than zero and increase from tier to tier")
        return self

    def segments(self) -> tuple[Segment, ...]:
        """The priced stretches of the month's quantity, the included quantity cut out (price 0: left out)."""
        tiers = self.tiers or (Tier(unit_price=self.unit_price or Decimal(0)),)
        segments = []
        lower = Decimal(0)
        for tier in tiers:
            upper = tier.up_to
            start = max(lower, self.included_quantity)
            if (upper is None or upper > start) and tier.unit_price > 0:
                segments.append(Segment(start, upper, tier.unit_price))
            lower = upper if upper is not None else lower
        return tuple(segments)

    def price(self, quantity: Decimal) -> Decimal:
        """What ``quantity`` (the month's total) costs: the reference the view's row prices sum to."""
        total = Decimal(0)
        for lower, upper, unit_price in self.segments():
            top = quantity if upper is None else min(quantity, upper)
            if top > lower:
                total += (top - lower) * unit_price
        return total


class RateCard(Frozen):
    """Prices per metric in one currency, for an export whose vendor reports usage but no cost."""

    currency: Currency
    """ISO 4217 code, e.g. "USD": the FOCUS ``BillingCurrency`` of the rows it prices."""
    metrics: dict[MetricName, MetricRate] = Field(min_length=1)
