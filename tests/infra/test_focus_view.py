"""The cross-vendor FOCUS view: a Glue VIRTUAL_VIEW in Athena's encoding, with the SQL the local path runs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from exporter_infra.app_builder import build_app
from exporter_infra.config import StageConfig
from exporter_infra.constructs.focus_view import decode_view_text
from report_exporter.errors import InvalidExportError
from report_exporter.focus.columns import COLUMNS
from report_exporter.focus.queries import QUERIES
from report_exporter.focus.view import VIEW_NAME, view_sql
from report_exporter.models.exports import ExportsFile
from report_exporter.models.exports.rate_card import MetricRate, RateCard
from tests.infra.conftest import Synth
from tests.infra.support import infra_config, infra_exports, logical_ids, resources


def _view(storage: Template) -> dict[str, Any]:
    (view,) = [t for t in resources(storage, "AWS::Glue::Table") if t["Properties"]["TableInput"]["Name"] == VIEW_NAME]
    return view


def test_the_view_is_an_athena_view_in_the_stage_database(synth: Synth) -> None:
    view = _view(synth.storage)
    table = view["Properties"]["TableInput"]
    assert table["TableType"] == "VIRTUAL_VIEW"
    assert table["Parameters"] == {"presto_view": "true", "comment": "Presto View"}
    assert table["ViewExpandedText"] == "/* Presto View */"
    assert table["ViewOriginalText"].startswith("/* Presto View: ") and table["ViewOriginalText"].endswith(" */")
    (database,) = logical_ids(synth.storage, "AWS::Glue::Database")
    assert view["Properties"]["DatabaseName"] == {"Ref": database}
    assert view["Properties"]["CatalogId"] == {"Ref": "AWS::AccountId"}


def test_the_view_holds_the_local_sql_for_the_deployed_exports(synth: Synth) -> None:
    document = decode_view_text(_view(synth.storage)["Properties"]["TableInput"]["ViewOriginalText"])
    assert document["originalSql"] == view_sql(synth.config.exports.exports)
    # Bare table names resolve in the stage's own database.
    assert document["catalog"] == "awsdatacatalog"
    assert document["schema"] == synth.config.names.glue_database == "report_exporter_test"
    # The test config's Particle rate card is in the deployed SQL.
    assert "WHEN r.export = 'particle-fleet' AND r.metric = 'data_operations'" in str(document["originalSql"])
    assert "CAST('0.00025' AS DECIMAL(19,9))" in str(document["originalSql"])


def test_the_view_declares_every_focus_column_with_its_type(synth: Synth) -> None:
    table = _view(synth.storage)["Properties"]["TableInput"]
    document = decode_view_text(table["ViewOriginalText"])
    assert document["columns"] == [{"name": c.name.lower(), "type": c.type} for c in COLUMNS]
    declared = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert declared == [(c.name.lower(), c.hive_type) for c in COLUMNS]
    assert {t for _, t in declared} == {"string", "timestamp", "decimal(38,18)"}
    assert table["PartitionKeys"] == []


def test_the_view_follows_the_tables_it_reads(synth: Synth) -> None:
    (view_id,) = [
        logical for logical, t in synth.storage.find_resources("AWS::Glue::Table").items()
        if t["Properties"]["TableInput"]["Name"] == VIEW_NAME
    ]
    depends = set(synth.storage.to_json()["Resources"][view_id].get("DependsOn", []))
    tables = {
        logical for logical, t in synth.storage.find_resources("AWS::Glue::Table").items() if logical != view_id
    }
    assert tables and tables <= depends


def test_the_view_has_its_saved_queries(storage: Template) -> None:
    queries = {q["Properties"]["Name"]: q["Properties"] for q in resources(storage, "AWS::Athena::NamedQuery")}
    for query in QUERIES:
        assert queries[query.name]["QueryString"] == query.sql
        assert f"FROM {VIEW_NAME}" in query.sql
    assert {q.name for q in QUERIES} == {
        "focus_cost_by_vendor_service_month", "focus_top_resources_latest_month", "focus_service_month_over_month",
        "focus_usage_without_price",
    }


def test_a_bad_rate_card_in_the_config_file_fails_synth_naming_export_and_field(tmp_path: Path) -> None:
    config = tmp_path / "exports.toml"
    config.write_text(
        '[[exports]]\nname = "particle-fleet"\nvendor = "particle"\nsecret_name = "s/particle"\n'
        '[exports.rate_card]\ncurrency = "USD"\n[exports.rate_card.metrics.data_operations]\n'
        'tiers = [{ up_to = 1000, unit_price = "0.0004" }]\n'
    )
    with pytest.raises(InvalidExportError) as raised:
        StageConfig.from_file(config, stage="test", bundle=False)
    assert "export 'particle-fleet': rate_card.metrics.data_operations" in str(raised.value)
    assert "the last tier has no 'up_to'" in str(raised.value)


@pytest.mark.parametrize(
    ("rate_card", "message"),
    [
        # Prices past 9 decimals would be rounded by the view's DECIMAL(19,9) cast.
        (RateCard.model_construct(currency="USD", metrics={
            "data_operations": MetricRate.model_construct(unit_price=Decimal("0.0000000001"), tiers=(),
                                                          included_quantity=Decimal(0))}),
         "rate_card.metrics.data_operations.unit_price"),
        (RateCard.model_construct(currency="usd", metrics={
            "data_operations": MetricRate(unit_price=Decimal("0.0004"))}), "rate_card.currency"),
        (RateCard.model_construct(currency="USD", metrics={"uplinks": MetricRate(unit_price=Decimal(1))}),
         "'uplinks' is not a metric of this export's usage"),
    ],
)
def test_a_rate_card_that_slipped_past_the_loader_fails_synth(rate_card: RateCard, message: str) -> None:
    """A config built in code: the view is not generated from a rate card the loader would refuse."""
    # Given an unscheduled export (so no schedule input validates it) with a rate card never validated
    good = infra_exports().get("particle-fleet")
    schedule = good.schedule.model_copy(update={"enabled": False})
    bad = type(good).model_construct(**(dict(good) | {"schedule": schedule, "rate_card": rate_card}))
    exports = ExportsFile.model_construct(exports=(bad,))
    # When the app is built, then the synth stops naming the export and the field
    with pytest.raises(InvalidExportError) as raised:
        build_app(infra_config(exports))
    assert "export 'particle-fleet'" in str(raised.value)
    assert message in str(raised.value)
