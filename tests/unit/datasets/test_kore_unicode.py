"""KORE usage records with text no Parquet column can hold: the run fails as an invalid report, naming the column.

JSON may escape half of a UTF-16 surrogate pair on its own (``"\\ud800"``, what a server that cuts a string
between the two halves of an emoji writes); Python reads it, UTF-8 cannot encode it.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from report_exporter.datasets.base import ReadContext
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import KoreExport
from report_exporter.vendors.kore.dataset import DATASET
from tests.fakes import plan_for

EXPORT = KoreExport(name="kore-main", secret_name="kore/main")


def read(data: bytes) -> int:
    context = ReadContext.for_plan(plan_for(EXPORT, "2024-05"), report_id=None, source_key="raw/kore/x.jsonl")
    return sum(batch.num_rows for batch in DATASET.read(io.BytesIO(data), context))


def page(**record: Any) -> bytes:
    base = {"account_sid": "AC1", "period": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}}
    return json.dumps({"usage_records": [{**base, **record}]}).encode() + b"\n"


@pytest.mark.parametrize(("body", "column"), [
    (page(account_sid="\ud800"), "account_sid"),
    (page(data={"units": "by\udc00tes"}), "data_units"),
    (page(sim_name="tracker \ud83d"), "extra"),
])
def test_a_lone_surrogate_fails_the_run_as_an_invalid_report_naming_the_column(body: bytes, column: str) -> None:
    # Given a page whose text holds an escaped lone surrogate, in a typed column or an unknown field
    assert b"\\ud" in body
    # When read / Then the run fails as an invalid report that names the column, not with an encoding crash
    with pytest.raises(InvalidReportError, match=rf"^column {column}: .*surrogates not allowed"):
        read(body)


def test_a_whole_surrogate_pair_is_read_as_its_character() -> None:
    # Given an emoji escaped as its surrogate pair / When read / Then it is one row (nothing refused)
    body = page(sim_name="tracker \U0001f4e1")
    assert b"\\ud83d\\udce1" in body
    assert read(body) == 1
