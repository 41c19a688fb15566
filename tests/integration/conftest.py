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
