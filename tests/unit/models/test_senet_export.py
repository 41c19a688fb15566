"""Senet export config: Application EUIs and calendar-month windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from report_exporter.errors import InvalidExportError
from report_exporter.models.exports import SenetExport, Window, month_window, parse_exports
from report_exporter.vendors.senet.export import normalize_eui

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


def test_senet_export_normalizes_application_euis() -> None:
    # Given EUIs written with separators and lower case
    raw: dict[str, object] = {"exports": [{"name": "senet-fleet", "vendor": "senet", "secret_name": "s/senet",
                        "application_euis": ["00-25-0c-00-00-01-00-01", "00250C0000010002"]}]}
    # When parsed
    (parsed,) = parse_exports(raw).exports
    # Then they are 16 upper-case hex digits, and the documented host is the default
    assert isinstance(parsed, SenetExport)
    assert parsed.application_euis == ("00250C0000010001", "00250C0000010002")
    assert parsed.resolved_base_url() == "https://api.senetco.io"


@pytest.mark.parametrize("euis", [[], ["00250C00000100"], ["00250C000001000G"], ["00250C0000010001"] * 2])
def test_senet_export_refuses_bad_application_euis(euis: list[str]) -> None:
    # Given a missing, short, non-hex or repeated EUI / When parsed / Then the field is named
    raw: dict[str, object] = {
        "exports": [{"name": "senet-fleet", "vendor": "senet", "secret_name": "s", "application_euis": euis}]
    }
    with pytest.raises(InvalidExportError, match="export 'senet-fleet': application_euis"):
        parse_exports(raw)


def test_senet_normalize_eui_names_the_bad_value() -> None:
    with pytest.raises(ValueError, match="'xyz' is not an EUI-64"):
        normalize_eui("xyz")


def test_senet_export_accepts_calendar_months_in_its_time_zone() -> None:
    export = SenetExport(name="senet-fleet", secret_name="s", application_euis=("00250C0000010001",),
                         timezone="Europe/Paris")
    export.check_window(month_window("2026-10", "Europe/Paris"), now=NOW)


def test_senet_export_refuses_a_window_that_is_not_a_calendar_month() -> None:
    # Given a window from the 5th (Senet takes only month and year)
    export = SenetExport(name="senet-fleet", secret_name="s", application_euis=("00250C0000010001",))
    window = Window(period="2026-10", start=datetime(2026, 10, 5, tzinfo=UTC), end=datetime(2026, 11, 1, tzinfo=UTC))
    # When checked / Then it is refused naming the export and the period
    with pytest.raises(InvalidExportError, match=r"'senet-fleet' period 2026-10: .*calendar month"):
        export.check_window(window, now=NOW)
