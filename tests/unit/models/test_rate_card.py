"""Rate cards in exports.toml: validated with the rest of the config, at synth and by `validate`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from report_exporter.errors import InvalidExportError
from report_exporter.models.exports import parse_exports
from report_exporter.models.exports.rate_card import MetricRate, Segment

D = Decimal


def _config(vendor: str, rate_card: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": f"{vendor}-x", "vendor": vendor, "secret_name": f"s/{vendor}"}
    base |= {
        "particle": {},
        "here": {"realm": "org123456789"},
        "telnyx": {"product": "messaging", "dimensions": ["direction"], "metrics": ["parts"]},
        "senet": {"application_euis": ["00250C0000010001"]},
        "kore": {},
    }[vendor]
    return {"exports": [base | fields | {"rate_card": rate_card}]}


def _error(config: dict[str, Any]) -> str:
    with pytest.raises(InvalidExportError) as caught:
        parse_exports(config, source="exports.toml")
    return str(caught.value)


FLAT = {"currency": "USD", "metrics": {"data_operations": {"unit_price": "0.0004"}}}


def test_a_rate_card_is_optional_and_parsed_exactly() -> None:
    (export,) = parse_exports(_config("particle", FLAT)).exports
    assert export.rate_card is not None
    assert export.rate_card.metrics["data_operations"].unit_price == D("0.0004")
    # TOML numbers are read through their shortest decimal form, not the float's binary value.
    (export,) = parse_exports(_config("particle", {"currency": "EUR", "metrics": {
        "data_operations": {"unit_price": 0.1, "included_quantity": 1000}}})).exports
    assert export.rate_card is not None and export.rate_card.metrics["data_operations"].unit_price == D("0.1")


@pytest.mark.parametrize(
    ("rate_card", "message"),
    [
        ({"currency": "usd", "metrics": {"data_operations": {"unit_price": "1"}}}, "currency"),
        ({"currency": "USD", "metrics": {}}, "metrics"),
        ({"currency": "USD", "metrics": {"data_operations": {}}}, "either 'unit_price' or 'tiers'"),
        ({"currency": "USD", "metrics": {"data_operations": {"unit_price": "1", "tiers": [{"unit_price": "1"}]}}},
         "either 'unit_price' or 'tiers'"),
        ({"currency": "USD", "metrics": {"data_operations": {"unit_price": "-1"}}}, "greater than or equal to 0"),
        ({"currency": "USD", "metrics": {"data_operations": {"unit_price": "0.0000000001"}}}, "decimal places"),
        ({"currency": "USD", "metrics": {"data_operations": {"tiers": [{"up_to": 10, "unit_price": "1"}]}}},
         "the last tier has no 'up_to'"),
        ({"currency": "USD", "metrics": {"data_operations": {"tiers": [
            {"up_to": 10, "unit_price": "1"}, {"up_to": 10, "unit_price": "1"}, {"unit_price": "1"}]}}},
         "increase from tier to tier"),
        ({"currency": "USD", "metrics": {"data_operations": {"tiers": [
            {"unit_price": "1"}, {"unit_price": "1"}]}}}, "every tier but the last needs 'up_to'"),
        ({"currency": "USD", "metrics": {"data_operations": {"unit_price": "1", "discount": "5"}}}, "discount"),
        ({"currency": "USD", "metrics": {"uplinks": {"unit_price": "1"}}},
         "'uplinks' is not a metric of this export's usage (priceable: 'data_operations')"),
    ],
)
def test_a_bad_rate_card_is_refused_naming_the_export_and_field(rate_card: dict[str, Any], message: str) -> None:
    error = _error(_config("particle", rate_card))
    # A field's own rule names the field; a rule across fields names it in its message ("(export): ... rate_card").
    assert error.startswith("exports.toml: export 'particle-x': ")
    assert "rate_card" in error and message in error


def test_vendors_that_report_their_cost_refuse_a_rate_card() -> None:
    card = {"currency": "USD", "metrics": {"data": {"unit_price": "1"}}}
    assert "KORE reports the billed amount of every usage record" in _error(_config("kore", card))
    telnyx = _config("telnyx", {"currency": "USD", "metrics": {"parts": {"unit_price": "1"}}},
                     metrics=["cost", "parts"])
    assert "Telnyx reports the cost of this export's usage" in _error(telnyx)


def test_each_vendor_prices_its_own_metrics() -> None:
    def card(*metrics: str) -> dict[str, Any]:
        return {"currency": "USD", "metrics": {m: {"unit_price": "1"} for m in metrics}}

    parse_exports(_config("senet", card("active_devices", "uplinks", "downlinks")))
    # Telnyx without the cost metric: its first metric is the rows' quantity.
    parse_exports(_config("telnyx", card("parts")))
    assert "'count' is not a metric" in _error(_config("telnyx", card("count"), metrics=["parts", "count"]))
    # HERE's metrics are its billed items: any name.
    parse_exports(_config("here", card("Geocoding, Forward", 'Stream "hot" storage')))


def test_segments_cut_the_included_quantity_out_of_the_tiers() -> None:
    rate = MetricRate(included_quantity=D(150), tiers=(
        {"up_to": D(100), "unit_price": D(2)}, {"up_to": D(1000), "unit_price": D(1)}, {"unit_price": D("0.5")},
    ))  # type: ignore[arg-type]
    assert rate.segments() == (Segment(D(150), D(1000), D(1)), Segment(D(1000), None, D("0.5")))
    assert rate.price(D(100)) == 0
    assert rate.price(D(151)) == D(1)
    assert rate.price(D(2000)) == D(850) + D(500)
    flat = MetricRate(unit_price=D("0.25"))
    assert flat.segments() == (Segment(D(0), None, D("0.25")),)
    assert flat.price(D("4.4")) == D("1.1")
    free = MetricRate(unit_price=D(0))
    assert free.segments() == () and free.price(D(10)) == 0


def test_a_metric_rate_is_frozen() -> None:
    with pytest.raises(ValidationError):
        MetricRate(unit_price=D(1), tiers=({"unit_price": D(1)},))  # type: ignore[arg-type]
