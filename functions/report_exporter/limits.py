"""How long each step may take: one source for the Lambda timeouts (infra), the outbound-call budgets
(handlers) and the ledger's lease lengths.

Every lease outlives the work it covers: a lease on a download is longer than DownloadReport may run,
so an expired lease always means its holder is gone, never that it is slow.
"""

from __future__ import annotations

from datetime import timedelta

PLAN_RUN = "PlanRun"
REQUEST_REPORT = "RequestReport"
CHECK_REPORT = "CheckReport"
DOWNLOAD_REPORT = "DownloadReport"
WRITE_PARQUET = "WriteParquet"
RECORD_FAILURE = "RecordFailure"
END_RUN = "EndRun"
WATCH_RUNS = "WatchRuns"

FUNCTION_TIMEOUT_SECONDS: dict[str, int] = {
    # Parse and date arithmetic only.
    PLAN_RUN: 20,
    # Up to three vendor calls (token, account lookup, create), each bounded by the call budget.
    REQUEST_REPORT: 120,
    # A token and one status call.
    CHECK_REPORT: 60,
    # Streams a whole report into S3: Lambda's maximum.
    DOWNLOAD_REPORT: 900,
    WRITE_PARQUET: 900,
    # Ledger writes and one SNS publish.
    RECORD_FAILURE: 30,
    END_RUN: 30,
    # A few GetItems per export (its recent months) and an SNS publish per new finding.
    WATCH_RUNS: 60,
}

CALL_MARGIN_SECONDS = 5.0
"""Every outbound call must end this long before the function's own timeout, so a hanging vendor ends
as a retried ``VendorUnavailableError`` (with time left to say so) instead of a Lambda timeout."""

CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 60.0
"""Ceilings for one vendor call; the remaining time of the invocation lowers them."""

LEASE_GRACE = timedelta(minutes=2)


def function_timeout(state: str) -> timedelta:
    return timedelta(seconds=FUNCTION_TIMEOUT_SECONDS[state])


# Lease lengths of the ledger's claims (see aws/ledger.py).
REQUEST_LEASE = function_timeout(REQUEST_REPORT) + LEASE_GRACE
DOWNLOAD_LEASE = function_timeout(DOWNLOAD_REPORT) + LEASE_GRACE
PUBLISH_LEASE = function_timeout(WRITE_PARQUET) + LEASE_GRACE
