"""AWS list prices per region (USD), the one place the cost estimate of a run reads them from.

On-demand list prices, without the free tier (4,000 state transitions, 1 M Lambda requests and 400,000
GB-seconds a month, ...), savings plans or taxes: the estimate says what a run would cost an account
that has used its free tier up. From the AWS pricing pages of Step Functions (Standard workflows),
Lambda (Arm), S3 Standard, Secrets Manager, DynamoDB on-demand (after its November 2024 price cut) and
SNS; update them here when AWS changes them. A region missing here is estimated at ``us-east-1``'s
prices, and the estimate says so (``prices_region``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

_MILLION = Decimal(1_000_000)
_THOUSAND = Decimal(1000)


@dataclass(frozen=True)
class Prices:
    """Unit prices in USD. Each is per one unit (one transition, one request, one GB-second, ...)."""

    region: str
    state_transition: Decimal
    """Step Functions Standard: one state transition (retries are transitions too)."""
    lambda_request: Decimal
    lambda_gb_second: Decimal
    """Arm (Graviton), first pricing tier."""
    s3_write_request: Decimal
    """PUT, COPY, POST, LIST (multipart parts included)."""
    s3_read_request: Decimal
    """GET, HEAD and every other request but DELETE and abort, which are free."""
    s3_gb_month: Decimal
    """S3 Standard, first 50 TB."""
    secrets_api_call: Decimal
    dynamodb_read_unit: Decimal
    """On-demand read request unit: one strongly consistent read of up to 4 KB."""
    dynamodb_write_unit: Decimal
    """On-demand write request unit: one write of up to 1 KB."""
    sns_publish: Decimal


def _prices(region: str, *, transition: str = "0.025", s3_write: str = "0.005", s3_read: str = "0.0004",
            s3_gb: str = "0.023", ddb_read: str = "0.125", ddb_write: str = "0.625") -> Prices:
    """Prices as the pricing pages write them: per 1,000 transitions and S3 requests, per million units."""
    return Prices(
        region=region,
        state_transition=Decimal(transition) / _THOUSAND,
        lambda_request=Decimal("0.20") / _MILLION,
        lambda_gb_second=Decimal("0.0000133334"),
        s3_write_request=Decimal(s3_write) / _THOUSAND,
        s3_read_request=Decimal(s3_read) / _THOUSAND,
        s3_gb_month=Decimal(s3_gb),
        secrets_api_call=Decimal("0.05") / Decimal(10_000),
        dynamodb_read_unit=Decimal(ddb_read) / _MILLION,
        dynamodb_write_unit=Decimal(ddb_write) / _MILLION,
        sns_publish=Decimal("0.50") / _MILLION,
    )


PRICES: dict[str, Prices] = {
    "us-east-1": _prices("us-east-1"),
    "us-east-2": _prices("us-east-2"),
    "us-west-2": _prices("us-west-2"),
    "eu-west-1": _prices("eu-west-1", ddb_read="0.1415", ddb_write="0.7075"),
    "eu-central-1": _prices("eu-central-1", s3_write="0.0054", s3_read="0.00043", s3_gb="0.0245",
                            ddb_read="0.1525", ddb_write="0.7625"),
}
FALLBACK_REGION = "us-east-1"


def prices_for(region: str) -> Prices:
    """The prices of ``region``, or ``us-east-1``'s when it is not in :data:`PRICES` (see ``Prices.region``)."""
    return PRICES.get(region) or PRICES[FALLBACK_REGION]
