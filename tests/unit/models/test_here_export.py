"""HERE export config: realm, detail level, filters, token URL, and the 95-day window limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from report_exporter.errors import InvalidExportError
from report_exporter.models.exports import HereExport, Window, month_window, parse_exports

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


def here(**fields: Any) -> HereExport:
    return HereExport(**{"name": "here-main", "secret_name": "here/main", "realm": "org123456789", **fields})


def test_here_export_defaults_follow_the_vendor_docs() -> None:
    # Given only the required fields / When the export is built
    export = here()
    # Then HERE's documented endpoints and defaults apply
    assert export.resolved_base_url() == "https://usage.bam.api.here.com/v2"
    assert export.token_url == "https://account.api.here.com/oauth2/token"
    assert export.detail_level == "summarized"
    assert export.charge_type is None and export.group_by == () and export.sub_accounts == ()


def test_here_export_is_chosen_by_the_vendor_discriminator() -> None:
    # Given a config document as the TOML loader returns it
    raw = {"exports": [{"vendor": "here", "name": "here-partner", "secret_name": "exporter/here",
                        "realm": "org123456789", "detail_level": "day", "group_by": ["appId", "project"],
                        "charge_type": "nonBillable",
                        "sub_accounts": ["org112135", "org124566"]}]}
    # When it is parsed
    (export,) = parse_exports(raw).exports
    # Then it is a HereExport with every field typed
    assert isinstance(export, HereExport)
    assert export.group_by == ("appId", "project") and export.sub_accounts == ("org112135", "org124566")


def test_here_export_refuses_hour_detail_with_a_clear_message() -> None:
    # Given hour detail, which HERE serves only synchronously
    raw = {"exports": [{"vendor": "here", "name": "here-main", "secret_name": "s", "realm": "org123456789",
                        "detail_level": "hour"}]}
    # When / Then: the message names the export, the field and why
    with pytest.raises(InvalidExportError, match=r"here-main.*detail_level.*'hour' is not supported for HERE async"):
        parse_exports(raw)


@pytest.mark.parametrize("realm", ["org1", "o" * 31, "org/123456", "org 123456", ""])
def test_here_export_refuses_realms_outside_5_to_30_safe_characters(realm: str) -> None:
    with pytest.raises(ValidationError, match="realm"):
        here(realm=realm)


@pytest.mark.parametrize(
    ("field", "value"),
    [("charge_type", "free"), ("group_by", ["featureId"]), ("group_by", ["appId", "appId"]),
     ("sub_accounts", ["org1"]), ("sub_accounts", ["org112135", "org112135"]), ("detail_level", "week"),
     ("token_url", "ftp://account.api.here.com/oauth2/token"), ("token_url", "https://a.test/t?x=1")],
)
def test_here_export_refuses_values_the_api_does_not_accept(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        here(**{field: value})


def test_here_export_needs_a_realm() -> None:
    with pytest.raises(ValidationError, match="realm"):
        HereExport(name="here-main", secret_name="s")  # type: ignore[call-arg]


def test_check_window_accepts_any_calendar_month() -> None:
    # Given the longest month in a non-UTC zone / When / Then: nothing is raised
    here(timezone="Europe/Berlin").check_window(month_window("2026-10", "Europe/Berlin"), now=NOW)


def test_check_window_accepts_exactly_95_days() -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    here().check_window(Window(period="2026-06", start=start, end=start + timedelta(days=95)), now=NOW)


def test_check_window_refuses_more_than_95_days() -> None:
    # Given a window one second over HERE's 95-day limit, built by hand
    start = datetime(2026, 6, 1, tzinfo=UTC)
    window = Window(period="2026-06", start=start, end=start + timedelta(days=95, seconds=1))

    # When / Then: refused with the export, the period and the limit named
    with pytest.raises(InvalidExportError, match=r"export 'here-main' period 2026-06: .*at most 95 days"):
        here().check_window(window, now=NOW)
