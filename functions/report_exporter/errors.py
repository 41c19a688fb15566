"""Error vocabulary: each class name is a Step Functions error name matched by Retry and Catch.

Messages are written for the operator who reads them in the console or an alert: they name the
vendor, the export and what was wrong, and never carry a secret or a signed download URL.
"""

from __future__ import annotations


class ExporterError(Exception):
    """Base for every error the state machine may match on."""


class TransientError(ExporterError):
    """Base for errors worth retrying: Step Functions retries these with backoff and jitter."""


class VendorThrottledError(TransientError):
    """429 (or 503 with Retry-After) from a vendor."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class VendorUnavailableError(TransientError):
    """5xx, timeout, connection failure, or an unreadable answer (an empty or non-JSON 200) from a vendor."""


class OutstandingReportCapError(TransientError):
    """The vendor account already has its maximum of open report requests; retried later."""


class ReportBusyError(TransientError):
    """Another execution is requesting or downloading this export's report right now; retried, then adopted."""


class ReportNotAvailableYetError(TransientError):
    """The vendor has not produced the period's data yet (for example Senet's 404 for last month)."""


class ReportSupersededError(ExporterError):
    """A newer request replaced the report this execution was following; it stops without touching the ledger."""


class RunEndedError(ExporterError):
    """A Lambda of an execution that already ended (stopped, timed out) tried to take a claim; it takes nothing."""


class VendorAuthError(ExporterError):
    """401/403: the credentials were refused. Not retried."""


class VendorRequestError(ExporterError):
    """The vendor refused the request as invalid (a 4xx other than auth and throttling)."""


class VendorContractError(ExporterError):
    """The vendor answered with something its documented contract does not allow."""


class InvalidExportError(ExporterError):
    """The export configuration or the requested period is not acceptable."""


class ReportFailedError(ExporterError):
    """The vendor reports that generating the report failed."""


class ReportArchivedError(ExporterError):
    """The vendor archived the report before it could be downloaded."""


class ReportTimedOutError(ExporterError):
    """The report was still not ready when the export's deadline passed."""


class ReportNotAvailableError(ExporterError):
    """The vendor still had no data for the period when the export's deadline passed."""


class DownloadExpiredError(ExporterError):
    """The download link was refused even after asking the vendor for a fresh one."""


class InvalidReportError(ExporterError):
    """The raw report could not be converted: a bad value, a missing column, a row-count mismatch."""


class SecretError(ExporterError):
    """The export's secret is missing, unreadable or lacks a required field."""
