"""Integration: real handlers fed from events/, AWS in moto."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from report_exporter.aws import clients


@dataclass(frozen=True)
class Buckets:
    raw: str = "test-raw"
    curated: str = "test-curated"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Buckets]:
    buckets = Buckets()
    monkeypatch.setenv("RAW_BUCKET", buckets.raw)
    monkeypatch.setenv("CURATED_BUCKET", buckets.curated)
    with mock_aws():
        clients.reset()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=buckets.raw)
        s3.create_bucket(Bucket=buckets.curated)
        yield buckets
        clients.reset()
