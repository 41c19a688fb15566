"""The simulators' shared behaviour: in-process streaming and their own (settable) clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from report_exporter.adapters.auth import clear_token_cache
from report_exporter.adapters.http_client import build_client
from report_exporter.clock import SYSTEM, VirtualClock
from report_exporter.local.simulators.base import SimRequest, SimResponse, Simulator
from report_exporter.models.exports import HereExport, KoreExport
from report_exporter.vendors.here.adapter import HereAdapter
from report_exporter.vendors.here.simulator import HereSimulator
from report_exporter.vendors.kore.adapter import KoreAdapter
from report_exporter.vendors.kore.simulator import KoreSimulator
from tests.fakes import MemorySink, plan_for

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


class Counting(Simulator):
    """Serves three chunks and counts how many it has produced."""

    def __init__(self) -> None:
        super().__init__()
        self.produced = 0

    def handle(self, request: SimRequest) -> SimResponse:
        def body() -> Iterator[bytes]:
            for chunk in (b"a,b\n", b"1,2\n", b"3,4\n"):
                self.produced += 1
                yield chunk

        return SimResponse.text(body(), "text/csv")


def test_transport_streams_an_iterator_body_as_the_client_reads_it() -> None:
    # Given a simulator whose body is produced chunk by chunk
    sim = Counting()
    client = httpx.Client(base_url="http://sim.test", transport=sim.transport())
    # When a client opens a streamed response
    with client.stream("GET", "/report.csv") as response:
        # Then nothing was produced before the client read the body...
        assert sim.produced == 0
        data = b"".join(response.iter_bytes())
    # ...and reading it yields the whole file
    assert data == b"a,b\n1,2\n3,4\n"
    assert sim.produced == 3


def test_simulator_clock_is_the_system_clock_until_set() -> None:
    assert KoreSimulator().clock is SYSTEM


def test_kore_simulator_expires_tokens_on_its_own_clock() -> None:
    # Given an adapter whose clock stands still and a simulator whose clock passes the token's lifetime
    clear_token_cache()
    sim = KoreSimulator(expires_in=600)
    sim.clock = VirtualClock(NOW)
    export = KoreExport(name="kore-main", secret_name="kore/main", base_url=sim.base_url, token_url=sim.token_url)
    creds = {k: SecretStr(v) for k, v in sim.credentials().items()}
    adapter = KoreAdapter(export, build_client(sim.base_url, transport=sim.transport()), creds, VirtualClock(NOW))
    adapter.request(plan_for(export, "2024-05"))
    sim.clock.advance(601)
    # When the adapter downloads with the token it still thinks valid
    adapter.download(plan_for(export, "2024-05"), None, MemorySink())
    clear_token_cache()
    # Then the simulator refused it as expired, and a second token was issued
    assert sim.tokens_issued == 2


def test_here_simulator_expires_tokens_on_its_own_clock() -> None:
    # Given an adapter whose clock stands still and a simulator whose clock passes the token's lifetime
    clear_token_cache()
    sim = HereSimulator(pending_polls=5, token_lifetime=600)
    sim.clock = VirtualClock(NOW)
    export = HereExport(name="here-main", secret_name="here/main", realm="org123456789",
                        base_url="https://usage.here.test/v2", token_url="https://usage.here.test/oauth2/token")
    creds = {name: SecretStr(value) for name, value in sim.credentials().items()}
    adapter = HereAdapter(export, build_client(export.resolved_base_url(), transport=sim.transport()), creds,
                          VirtualClock(NOW))
    report = adapter.request(plan_for(export))
    sim.clock.advance(601)
    # When the adapter polls with the token it still thinks valid
    adapter.poll(plan_for(export), report.report_id or "")
    clear_token_cache()
    # Then the simulator refused it as expired, and a second token was issued
    assert sim.token_requests == 2
