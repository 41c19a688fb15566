"""What every vendor folder declares: its facts (:class:`VendorFacts`) and its polling cadence (:class:`Cadence`).

Pure data, importable by every bundle: the Lambdas, infra (secret fields) and the README's checks read the
same values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from report_exporter.models.exports.base import VendorName


@dataclass(frozen=True)
class Cadence:
    """When to poll a pending report: the vendor's documented opening waits, then waits that grow with the
    report's age.

    Wait ``n`` (before poll ``n + 1``) is ``steps[n]`` for the first ``len(steps)`` waits. After them it is
    ``growth`` times the report's age (the time since it was requested), never shorter than the last step
    (the vendor's guidance on how often to ask) and never longer than ``cap``. So a report is found at most
    ``max(steps[-1], growth * age, cap)`` after it is ready, and a report pending for a day costs polls in
    proportion to the logarithm of its age rather than to the age itself. ``growth=0`` holds the last step.
    CheckReport also stops every wait at the run's deadline, and a throttled poll waits longer.
    """

    steps: tuple[int, ...]
    growth: float = 0.0
    cap: int = 3600

    def __post_init__(self) -> None:
        if not self.steps or min(self.steps) < 1 or self.growth < 0 or self.cap < max(self.steps):
            raise ValueError(f"invalid cadence {self!r}")

    def wait(self, polls: int, age_seconds: float) -> int:
        """Seconds to wait before poll ``polls + 1`` (``polls`` already done) of a report ``age_seconds`` old."""
        if polls < len(self.steps):
            return self.steps[polls]
        floor = self.steps[-1]
        return max(floor, min(self.cap, math.ceil(self.growth * age_seconds)))


def next_wait(cadence: Cadence, polls: int, age_seconds: float = 0.0) -> int:
    """The wait before poll ``polls + 1`` (``polls`` already done) of a report ``age_seconds`` old."""
    return cadence.wait(polls, age_seconds)


@dataclass(frozen=True)
class VendorFacts:
    """What the rest of the project needs to know of one vendor, declared once in its ``facts.py``."""

    vendor: VendorName
    provider: str
    """The vendor's name as a FOCUS ProviderName / PublisherName / InvoiceIssuerName."""
    secret_fields: tuple[str, ...]
    """The JSON fields its export's secret holds (infra describes the secret with them)."""
    datasets: tuple[str, ...]
    """The curated tables its exports write."""
    cadence: Cadence
    """When to poll a pending report (synchronous vendors: how soon to look again when data is not yet there)."""
    docs: tuple[str, ...]
    """The public documents its facts come from."""

    def __post_init__(self) -> None:
        if not (self.provider and self.secret_fields and self.datasets and self.docs):
            raise ValueError(f"{self.vendor.value}: facts need a provider, secret fields, datasets and docs")
