"""Logger singleton; third-party loggers that could print URLs are kept quiet."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger

# httpx logs every request's full URL at INFO: a signed download link must never reach a log line.
for _name in ("httpx", "httpcore", "urllib3", "botocore", "boto3", "s3transfer"):
    logging.getLogger(_name).setLevel(logging.WARNING)

logger = Logger(service="report-exporter")
