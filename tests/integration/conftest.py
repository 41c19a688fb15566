"""Integration: real handlers fed from events/, AWS in moto."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from report_exporter.aws import clients, s3
from report_exporter.models.manifest import RawManifest
from report_exporter.models.payloads import RawObject, RunPlan


@dataclass(frozen=True)
class Buckets:
    raw: str = "test-raw"
    curated: str = "test-curated"
    ledger: str = "test-ledger"


def create_ledger_table(name: str) -> None:
    """The ledger's key schema, as the storage stack declares it."""
    boto3.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Buckets]:
    buckets = Buckets()
    monkeypatch.setenv("RAW_BUCKET", buckets.raw)
    monkeypatch.setenv("CURATED_BUCKET", buckets.curated)
    monkeypatch.setenv("LEDGER_TABLE", buckets.ledger)
    with mock_aws():
        clients.reset()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=buckets.raw)
        s3.create_bucket(Bucket=buckets.curated)
        create_ledger_table(buckets.ledger)
        yield buckets
        clients.reset()


def keep_manifest(bucket: str, plan: RunPlan, obj: RawObject, *, params: Mapping[str, str] | None = None,
                  report_id: str | None = None) -> None:
    """The manifest DownloadReport writes beside ``obj`` once it is whole (for raw objects a test puts itself)."""
    s3.put_manifest(bucket, RawManifest.describe(plan, obj, params=params, report_id=report_id))
