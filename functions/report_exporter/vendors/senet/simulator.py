"""Senet Usage API simulator: ``/summary`` JSON and ``/details`` CSV per Application and month (see facts.py).

The raw API key must arrive as the whole ``Authorization`` header (no ``Bearer``), otherwise 403.
404 answers an unknown Application, a month without data, and every probe while the month is "not
generated yet" (``unavailable_probes``). The summary's counters are the sums of the details file, so
tests can check the two datasets against each other.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from report_exporter.local.simulators.base import SimRequest, SimResponse, Simulator, chunks

_EUI = re.compile(r"^[0-9A-Fa-f]{16}$")
DETAILS_HEADER = "DevEUI,Device Name,Contract ID,Uplinks,Downlinks,Security Sessions,Last Seen\n"


@dataclass
class SenetSimulator(Simulator):
    """Knobs describe the scenario; defaults are two Applications of five devices with data at once."""

    euis: tuple[str, ...] = ("00250C0000010001", "00250C0000010002")
    devices: int = 5
    unavailable_probes: int = 0
    no_data_periods: frozenset[str] = frozenset()
    api_key: str = field(default_factory=lambda: "senet-" + secrets.token_hex(16))
    summary_probes: int = 0

    def __post_init__(self) -> None:
        Simulator.__init__(self)
        self.vendor = "senet"

    def credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    # What the vendor holds, so tests can compare end to end.
    def device_rows(self, eui: str, period: str) -> list[dict[str, Any]]:
        rows = []
        for i in range(self.devices):
            seed = int(hashlib.sha1(f"{eui}{period}{i}".encode()).hexdigest()[:8], 16)
            rows.append({
                "dev_eui": f"{eui[:6]}{eui[-4:]}{i:06X}",
                "name": f"Sensor {i}, floor {i % 3}" if i % 2 else f"Meter {i}",
                "contract": f"C-{1000 + i % 2}",
                "uplinks": seed % 9000,
                "downlinks": seed % 120,
                "security_sessions": seed % 4,
            })
        return rows

    def summary(self, eui: str, period: str) -> dict[str, Any]:
        rows = self.device_rows(eui, period)
        up = sum(r["uplinks"] for r in rows)
        return {
            "numberOfDevices": len(rows),
            "numberOfActiveDevices": len(rows),
            "numberOfReportingDevices": sum(1 for r in rows if r["uplinks"]),
            "numberOfDevicesEvaluated": len(rows),
            "totalRegistrations": len(rows),
            "totalActivations": 1,
            "totalDeactivations": 0,
            "totalUpPackets": up,
            "totalDownPackets": sum(r["downlinks"] for r in rows),
            "totalSecuritySession": sum(r["security_sessions"] for r in rows),
            "totalLocalUpMsg": up - up // 10,
            "totalForeignUpMsg": up // 10,
            "totalLocalDownMsg": 3,
            "reportGenerated": f"{period}-01T00:00:00Z",
        }

    def _details(self, eui: str, period: str) -> Iterator[bytes]:
        yield DETAILS_HEADER.encode()
        for r in self.device_rows(eui, period):
            name = r["name"].replace('"', '""')
            yield (
                f'{r["dev_eui"]},"{name}",{r["contract"]},{r["uplinks"]},{r["downlinks"]},'
                f'{r["security_sessions"]},{period}-28T12:00:00Z\n'
            ).encode()

    def handle(self, request: SimRequest) -> SimResponse:
        if request.headers.get("authorization") != self.api_key:
            # The key goes bare: "Bearer <key>" is an authorization failure too.
            return SimResponse.json({"status": 403, "message": "Access denied"}, 403)
        kind = request.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method != "GET" or not request.path.startswith("/rest/integration/usage/") or kind not in (
            "summary", "details"
        ):
            return SimResponse.json({"status": 404, "message": "Not found"}, 404)
        eui, month, year = (request.arg(name) or "" for name in ("eui", "month", "year"))
        if not _EUI.match(eui) or not month.isdigit() or not 1 <= int(month) <= 12 or not (
            year.isdigit() and len(year) == 4
        ):
            return SimResponse.json({"status": 400, "message": "Invalid eui, month or year"}, 400)
        period = f"{year}-{int(month):02d}"
        if kind == "summary":
            self.summary_probes += 1
        available = self.summary_probes > self.unavailable_probes
        if not available or eui.upper() not in self.euis or period in self.no_data_periods:
            return SimResponse.json({"status": 404, "message": "Application or File not found"}, 404)
        if kind == "summary":
            return SimResponse.json(self.summary(eui.upper(), period))
        return SimResponse.text(chunks(self._details(eui.upper(), period)), "text/csv")
