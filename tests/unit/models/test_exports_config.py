"""The exports config: bad input names the export and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from report_exporter.errors import InvalidExportError
from report_exporter.models.exports import load_exports, parse_exports

ROOT = Path(__file__).resolve().parents[3]


def test_sample_and_demo_configs_are_valid() -> None:
    for path in (ROOT / "infra" / "exports.toml", ROOT / "functions/report_exporter/local/demo_exports.toml"):
        assert load_exports(path).exports


@pytest.mark.parametrize(("entry", "message"), [
    ({"scope": "org"}, "export 'p1': (export): Value error, scope 'org' needs 'org'"),
    ({"schedule": {"day_of_month": 31}}, "export 'p1': schedule.day_of_month: Input should be less than or equal"),
    ({"timezone": "Mars/Olympus"}, "export 'p1': timezone: Value error, unknown time zone 'Mars/Olympus'"),
    ({"base_url": "ftp://x"}, "export 'p1': base_url: String should match pattern"),
    ({"name": "Bad Name"}, "name: String should match pattern"),
])
def test_config_errors_name_export_and_field(entry: dict[str, object], message: str) -> None:
    raw = {"exports": [{"name": "p1", "vendor": "particle", "secret_name": "s/p", **entry}]}
    with pytest.raises(InvalidExportError) as caught:
        parse_exports(raw)
    assert message in str(caught.value)


def test_duplicate_export_names_are_refused() -> None:
    entry = {"name": "p1", "vendor": "particle", "secret_name": "s/p"}
    with pytest.raises(InvalidExportError, match="'p1' is used twice"):
        parse_exports({"exports": [entry, entry]})


def test_unknown_vendor_is_named() -> None:
    with pytest.raises(InvalidExportError, match="'acme'"):
        parse_exports({"exports": [{"name": "p1", "vendor": "acme", "secret_name": "s"}]})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidExportError, match="does not exist"):
        load_exports(tmp_path / "nope.toml")
