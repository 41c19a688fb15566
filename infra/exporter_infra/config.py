"""Stage configuration: which exports to deploy, read from the exports TOML file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from report_exporter.models.exports import ExportsFile, load_exports

DEFAULT_EXPORTS = Path(__file__).resolve().parents[1] / "exports.toml"


@dataclass(frozen=True)
class StageConfig:
    """Everything a synth needs; constructs get typed props from here, never env vars or context."""

    exports: ExportsFile
    stage: str = "prod"
    bundle: bool = True
    alarm_email: str = ""
    scanned_bytes_cutoff: int = 10 * 1024**3
    create_secrets: bool = True

    @classmethod
    def from_file(cls, path: Path | None = None, **kwargs: object) -> StageConfig:
        return cls(exports=load_exports(path or DEFAULT_EXPORTS), **kwargs)  # type: ignore[arg-type]

    @property
    def max_deadline_minutes(self) -> int:
        return max(e.report_deadline_minutes for e in self.exports.exports)
