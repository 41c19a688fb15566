"""Telnyx export config: required lists, names, and the 31-day window in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from report_exporter.errors import InvalidExportError
from report_exporter.models.exports import TelnyxExport, Window, month_window, parse_exports

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
BASE = {"name": "telnyx-sip", "vendor": "telnyx", "secret_name": "s/telnyx", "product": "sip-trunking",
        "dimensions": ["direction", "currency"], "metrics": ["cost", "billed_sec"]}


def export(**changes: object) -> TelnyxExport:
    return TelnyxExport.model_validate({**BASE, **changes})


def test_telnyx_export_reads_from_the_config_file() -> None:
    # Given a config entry with a filter and managed accounts
    raw: dict[str, object] = {"exports": [{**BASE, "filters": {"currency": "USD"}, "managed_accounts": True}]}
    # When parsed
    (parsed,) = parse_exports(raw).exports
    # Then the Telnyx fields are kept and the documented API root is the default
    assert isinstance(parsed, TelnyxExport)
    assert (parsed.product, parsed.dimensions, parsed.metrics) == ("sip-trunking", ("direction", "currency"),
                                                                    ("cost", "billed_sec"))
    assert parsed.filters == {"currency": "USD"} and parsed.managed_accounts is True
    assert parsed.resolved_base_url() == "https://api.telnyx.com/v2"


@pytest.mark.parametrize("field", ["dimensions", "metrics"])
def test_telnyx_export_requires_at_least_one_dimension_and_metric(field: str) -> None:
    # Given an empty list / When validated / Then the config error names the field
    with pytest.raises(InvalidExportError, match=f"export .telnyx-sip.: {field}: .*at least 1 item"):
        parse_exports({"exports": [{**BASE, field: []}]})


@pytest.mark.parametrize("changes", [
    {"product": "SIP Trunking"},
    {"metrics": ["cost", "cost"]},
    {"dimensions": ["direction&x=1"]},
    {"filters": {"currency": ""}},
])
def test_telnyx_export_refuses_bad_names(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        export(**changes)


def test_telnyx_export_accepts_a_31_day_month_in_any_time_zone() -> None:
    # Given October in Berlin, 31 days and one hour long in UTC
    berlin = export(timezone="Europe/Berlin")
    # When checked / Then it is accepted (the adapter splits it into two requests)
    berlin.check_window(month_window("2026-10", "Europe/Berlin"), now=NOW)
    assert len(berlin.request_ranges(month_window("2026-10", "Europe/Berlin"))) == 2


def test_telnyx_export_refuses_a_window_over_31_days() -> None:
    # Given a hand-made window of 31 days and one second
    window = Window(period="2026-10", start=datetime(2026, 10, 1, tzinfo=UTC),
                    end=datetime(2026, 11, 1, 0, 0, 1, tzinfo=UTC))
    # When checked / Then it is refused, naming the export, the period and the limit
    with pytest.raises(InvalidExportError, match=r"'telnyx-sip' period 2026-10: .*at most 31 days"):
        export().check_window(window, now=NOW)


def test_telnyx_export_request_ranges_are_the_month_in_utc_end_exclusive() -> None:
    # Given a New York export / When May's ranges are computed
    ranges = export(timezone="America/New_York").request_ranges(month_window("2026-05", "America/New_York"))
    # Then one range covers it, from local midnight on the 1st to local midnight on 1 June
    assert ranges == ((datetime(2026, 5, 1, 4, tzinfo=UTC), datetime(2026, 6, 1, 4, tzinfo=UTC)),)
