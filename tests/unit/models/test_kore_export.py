"""KoreExport: fields, the query range sent to KORE, and the periods refused before any request."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from report_exporter.errors import InvalidExportError
from report_exporter.logic.plan_run import plan_run
from report_exporter.models.exports import KoreExport, month_window, parse_exports
from report_exporter.models.payloads import PlanInput, StartInput
from report_exporter.vendors.kore.export import add_months, page_meta, page_records
from report_exporter.vendors.kore.facts import BASE_URL as KORE_BASE_URL
from report_exporter.vendors.kore.facts import TOKEN_URL as KORE_TOKEN_URL
from report_exporter.vendors.kore.simulator import KoreSimulator

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
EXPORT = KoreExport(name="kore-main", secret_name="kore/main")


def test_kore_export_defaults_to_daily_account_records_at_kores_endpoints() -> None:
    # Given a minimal KORE entry in the config
    (export,) = parse_exports({"exports": [{"name": "k1", "vendor": "kore", "secret_name": "s/k"}]}).exports
    # When it is read / Then it is a daily, account-level export against KORE's documented hosts
    assert isinstance(export, KoreExport)
    assert (export.granularity, export.sim_sid) == ("daily", "")
    assert export.resolved_base_url() == KORE_BASE_URL
    assert export.token_url == KORE_TOKEN_URL


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"granularity": "weekly"}, "export 'k1': granularity: Input should be 'daily', 'hourly' or 'all'"),
        ({"token_url": "ftp://auth"}, "export 'k1': token_url: String should match pattern"),
        ({"sim_sid": "DE12/../x"}, "export 'k1': sim_sid: String should match pattern"),
        ({"page_size": 10}, "export 'k1': page_size: Extra inputs are not permitted"),
    ],
)
def test_kore_export_config_errors_name_export_and_field(entry: dict[str, object], message: str) -> None:
    # Given a KORE entry with a bad field / When parsed / Then the export and the field are named
    raw = {"exports": [{"name": "k1", "vendor": "kore", "secret_name": "s/k", **entry}]}
    with pytest.raises(InvalidExportError) as caught:
        parse_exports(raw)
    assert message in str(caught.value)


def test_query_range_is_the_month_in_utc_with_an_inclusive_end() -> None:
    # Given May 2024 in UTC and in New York
    utc = EXPORT.query_range(month_window("2024-05", "UTC"))
    new_york = EXPORT.model_copy(update={"timezone": "America/New_York"})
    local = new_york.query_range(month_window("2024-05", "America/New_York"))
    # When the range is computed / Then End is the month's last second, both given in UTC
    assert utc == (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC))
    assert local == (datetime(2024, 5, 1, 4, tzinfo=UTC), datetime(2024, 6, 1, 3, 59, 59, tzinfo=UTC))
    assert local[0].tzinfo is UTC


def test_check_window_refuses_a_period_past_the_18_month_retention() -> None:
    # Given now = 3 November 2026: data before 3 May 2025 may already be deleted
    # When May 2025 is checked / Then it is refused, naming the retention
    with pytest.raises(InvalidExportError, match=r"export 'kore-main' period 2025-05: KORE keeps usage records for 18"):
        EXPORT.check_window(month_window("2025-05", "UTC"), now=NOW)
    # And June 2025 is still served
    EXPORT.check_window(month_window("2025-06", "UTC"), now=NOW)


@pytest.mark.parametrize("granularity", ["daily", "hourly", "all"])
def test_check_window_accepts_a_utc_month_for_every_granularity(granularity: str) -> None:
    # Given a 31-day UTC month / When checked / Then nothing is refused
    export = EXPORT.model_copy(update={"granularity": granularity})
    export.check_window(month_window("2026-10", "UTC"), now=NOW)


def test_check_window_refuses_hourly_for_a_month_longer_than_31_days() -> None:
    # Given an hourly export in Berlin: October has 31 days and one extra hour (summer time ends)
    export = EXPORT.model_copy(update={"granularity": "hourly", "timezone": "Europe/Berlin"})
    # When October is checked / Then it is refused with a way out
    with pytest.raises(InvalidExportError, match=r"at most 31 days.*use granularity 'daily' or time zone 'UTC'"):
        export.check_window(month_window("2026-10", "Europe/Berlin"), now=NOW)
    # And daily granularity for the same month is fine
    EXPORT.model_copy(update={"timezone": "Europe/Berlin"}).check_window(
        month_window("2026-10", "Europe/Berlin"), now=NOW
    )


def test_plan_run_refuses_an_expired_period_before_any_request() -> None:
    # Given a KORE simulator standing by, and a backfill of a month KORE no longer keeps
    sim = KoreSimulator()
    export = EXPORT.model_copy(update={"base_url": sim.base_url, "token_url": sim.token_url})
    start = StartInput(export=export, period="2024-05")
    # When the run is planned
    with pytest.raises(InvalidExportError, match="18 months"):
        plan_run(PlanInput(start=start, execution_id="arn:aws:states:us-east-1:1:execution:m:x"), now=NOW)
    # Then KORE was never called, not even for a token
    assert sim.seen == []
    assert sim.tokens_issued == 0


def test_add_months_clamps_the_day() -> None:
    # Given month ends / When moved by months / Then the day is clamped to the target month
    assert add_months(datetime(2026, 8, 31, tzinfo=UTC), -18) == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2024, 1, 31, tzinfo=UTC), 1) == datetime(2024, 2, 29, tzinfo=UTC)


def test_page_helpers_read_both_meta_shapes() -> None:
    # Given the spec's meta, KORE's general meta-data, and a page naming its list by meta.key
    spec = {"usage_records": [1], "meta": {"next_page_url": "a", "key": "usage_records"}}
    guidelines = {"usage_records": [1, 2], "meta-data": {"page_number": 2, "next_page_url": None}}
    keyed = {"records": [3], "meta": {"key": "records"}}
    # When read / Then each gives its paging object and records
    assert page_meta(spec)["next_page_url"] == "a"
    assert page_meta(guidelines)["page_number"] == 2
    assert [page_records(p) for p in (spec, guidelines, keyed)] == [[1], [1, 2], [3]]
    assert page_records({"meta": {}}) is None
    assert page_records([1]) is None
