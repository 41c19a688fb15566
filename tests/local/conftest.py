"""End to end through the local runner: the synthesized state machine in moto, vendors simulated on loopback.

The CDK app is synthesized once per session; every test gets fresh moto resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from report_exporter.local.demo import demo_exports
from report_exporter.local.runner import LocalEnvironment, synthesize


@pytest.fixture(scope="session")
def local_templates() -> dict[str, dict[str, Any]]:
    return synthesize(demo_exports())


@pytest.fixture
def local_env(local_templates: dict[str, dict[str, Any]]) -> Iterator[LocalEnvironment]:
    with LocalEnvironment(demo_exports(), templates=local_templates) as env:
        yield env
