"""Failure alerts through SNS."""

from __future__ import annotations

from collections.abc import Callable

from report_exporter.aws import clients


def sns_notifier(topic_arn: str) -> Callable[[str, str], None] | None:
    """A publisher to ``topic_arn``, or None when no topic is configured."""
    if not topic_arn:
        return None

    def publish(subject: str, message: str) -> None:
        clients.sns().publish(TopicArn=topic_arn, Subject=subject, Message=message)

    return publish
