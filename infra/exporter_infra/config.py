"""Stage configuration: which exports to deploy, read from the exports TOML file, and where alerts go."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from report_exporter.models.exports import ExportsFile, load_exports
from report_exporter.stages import StageNames

DEFAULT_EXPORTS = Path(__file__).resolve().parents[1] / "exports.toml"
ALERTS = ("on", "off")


class StageConfigError(ValueError):
    """A stage configuration that must not be deployed; the message says how to fix it."""


@dataclass(frozen=True)
class StageConfig:
    """Everything a synth needs; constructs get typed props from here, never env vars or context.

    ``exports`` are the exports as configured; :attr:`deployed_exports` are the same exports as this
    stage runs them (its own secret names). Alerts need a destination: an ``alarm_email``, or
    ``alerts="off"`` to say explicitly that failures notify nobody.
    """

    exports: ExportsFile
    stage: str = "prod"
    bundle: bool = True
    alarm_email: str = ""
    alerts: Literal["on", "off"] = "on"
    scanned_bytes_cutoff: int = 10 * 1024**3
    create_secrets: bool = True
    link_margin_hours: int = 24
    """WatchRuns alerts a ready report not downloaded this long before its vendor link expires (1-144 h:
    Particle's links last 7 days)."""

    def __post_init__(self) -> None:
        try:
            StageNames(self.stage)
        except ValueError as exc:
            raise StageConfigError(f"{exc} (-c stage=... or STAGE=...)") from None
        if self.alerts not in ALERTS:
            raise StageConfigError(f"alerts must be 'on' or 'off', not {self.alerts!r} (-c alerts=... or ALERTS=...)")
        if self.alerts == "on" and not self.alarm_email:
            raise StageConfigError(
                f"stage {self.stage!r}: failure alerts would reach nobody. Either give them a destination with "
                "-c alarm_email=you@example.com (or ALARM_EMAIL=you@example.com), or turn them off explicitly "
                "with -c alerts=off (or ALERTS=off)."
            )
        if self.alerts == "off" and self.alarm_email:
            raise StageConfigError(
                f"stage {self.stage!r}: alerts=off contradicts alarm_email={self.alarm_email!r}; drop one of them."
            )
        if not 1 <= self.link_margin_hours <= 144:
            raise StageConfigError(f"link_margin_hours must be 1 to 144 hours, not {self.link_margin_hours} "
                                   "(-c link_margin_hours=... or LINK_MARGIN_HOURS=...)")
        if self.alarm_email and "@" not in self.alarm_email:
            raise StageConfigError(f"alarm_email {self.alarm_email!r} is not an email address")

    @classmethod
    def from_file(cls, path: Path | None = None, **kwargs: object) -> StageConfig:
        return cls(exports=load_exports(path or DEFAULT_EXPORTS), **kwargs)  # type: ignore[arg-type]

    @property
    def names(self) -> StageNames:
        """This stage's physical names (shared with the operator CLI)."""
        return StageNames(self.stage)

    @property
    def deployed_exports(self) -> ExportsFile:
        """The exports as this stage schedules and runs them: secrets the stack creates carry the stage."""
        return self.names.exports(self.exports)

    @property
    def max_deadline_minutes(self) -> int:
        return max(e.report_deadline_minutes for e in self.exports.exports)
