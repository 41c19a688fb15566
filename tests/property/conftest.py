"""Property tests: the deployed definition, read once per session from the synthesized templates."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.property.world import Deployment


@pytest.fixture(scope="session")
def deployment(local_templates: dict[str, dict[str, Any]]) -> Deployment:
    return Deployment.from_templates(local_templates)


@pytest.fixture
def quiet_handlers() -> Iterator[None]:
    """Thousands of invocations: keep the handlers' log lines (failures are the point here) out of the output."""
    from report_exporter.observability import logger

    level = logger.log_level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
