"""The export configuration: one model per vendor, one discriminated union, one file loader."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from report_exporter.errors import InvalidExportError
from report_exporter.models.exports.base import (
    ExportBase,
    Frozen,
    Period,
    ScheduleSpec,
    VendorName,
    Window,
    month_window,
    previous_period,
)
from report_exporter.vendors.here.export import HereExport
from report_exporter.vendors.kore.export import KoreExport
from report_exporter.vendors.particle.export import ParticleExport
from report_exporter.vendors.senet.export import SenetExport
from report_exporter.vendors.telnyx.export import TelnyxExport

ExportSpec = Annotated[
    ParticleExport | HereExport | TelnyxExport | SenetExport | KoreExport,
    Field(discriminator="vendor"),
]
EXPORT_ADAPTER: TypeAdapter[ExportSpec] = TypeAdapter(ExportSpec)


class ExportsFile(Frozen):
    """The whole config file: ``[[exports]]`` tables."""

    exports: tuple[ExportSpec, ...]

    @field_validator("exports")
    @classmethod
    def _unique_names(cls, exports: tuple[ExportSpec, ...]) -> tuple[ExportSpec, ...]:
        if not exports:
            raise ValueError("the config lists no exports")
        seen: set[str] = set()
        for export in exports:
            if export.name in seen:
                raise ValueError(f"export name {export.name!r} is used twice")
            seen.add(export.name)
        return exports

    def get(self, name: str) -> ExportSpec:
        for export in self.exports:
            if export.name == name:
                return export
        known = ", ".join(e.name for e in self.exports)
        raise InvalidExportError(f"no export named {name!r} in the config (known: {known})")


def describe_validation_error(error: ValidationError, raw: dict[str, object]) -> str:
    """One line per problem, naming the export and the field: ``export 'x': field: message``."""
    lines = []
    listed = raw.get("exports")
    exports: list[object] = listed if isinstance(listed, list) else []
    for item in error.errors():
        loc = list(item["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "exports" and isinstance(loc[1], int):
            index = loc[1]
            entry = exports[index] if index < len(exports) else {}
            name = entry.get("name") if isinstance(entry, dict) else None
            where = f"export {name!r}" if name else f"exports[{index}]"
            loc = [part for part in loc[2:] if part not in {v.value for v in VendorName}]
        field = ".".join(str(part) for part in loc) or "(export)"
        lines.append(f"{where + ': ' if where else ''}{field}: {item['msg']}")
    return "; ".join(lines)


def parse_exports(raw: dict[str, object], *, source: str = "config") -> ExportsFile:
    """Validate a parsed config document.

    Raises:
        InvalidExportError: naming each export and field that is wrong.
    """
    try:
        return ExportsFile.model_validate(raw)
    except ValidationError as exc:
        raise InvalidExportError(f"{source}: {describe_validation_error(exc, raw)}") from None


def load_exports(path: Path) -> ExportsFile:
    """Read and validate an exports TOML file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidExportError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidExportError(f"{path}: not valid TOML: {exc}") from None
    return parse_exports(raw, source=str(path))


__all__ = [
    "EXPORT_ADAPTER",
    "ExportBase",
    "ExportSpec",
    "ExportsFile",
    "HereExport",
    "KoreExport",
    "ParticleExport",
    "Period",
    "ScheduleSpec",
    "SenetExport",
    "TelnyxExport",
    "VendorName",
    "Window",
    "load_exports",
    "month_window",
    "parse_exports",
    "previous_period",
]
