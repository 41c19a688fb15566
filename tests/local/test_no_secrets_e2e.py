"""For every vendor: a full run leaks no credential, issued token or signed link into logs, state payloads, errors,
metrics (the EMF documents) or the ledger (its figures and cost)."""

from __future__ import annotations

import pytest

from report_exporter.local.demo import SIMULATORS, demo_exports
from report_exporter.local.runner import LocalEnvironment
from tests.local.conftest import PERIOD, CapturedLogs

EXPORTS = {e.vendor_name.value: e for e in demo_exports().exports}


@pytest.mark.parametrize("vendor", sorted(EXPORTS))
def test_full_run_leaks_no_secret(vendor: str, local_env: LocalEnvironment, captured_logs: CapturedLogs) -> None:
    export = EXPORTS[vendor]
    with SIMULATORS[export.vendor_name]() as sim:
        # When the demo export runs end to end, every log line captured
        result = local_env.run(export, period=PERIOD, simulator=sim)
        secrets = [v for v in sim.credentials().values() if len(v) >= 8]
        secrets += list(getattr(sim, "issued_tokens", [])) + list(getattr(sim, "_tokens", {}))
        # Particle's signed download links: their signatures
        secrets += [r.signature for r in getattr(sim, "reports", {}).values() if getattr(r, "signature", "")]
    logs = captured_logs.text()
    # Then it succeeded and none of the credentials, nor any token the vendor issued, appears anywhere
    assert result.succeeded, result.cause
    assert "report requested" in logs
    assert result.metrics
    haystack = "\n".join([logs, str(result.history), str(result.output), str(result.metrics),
                          str(local_env.ledger_items())])
    assert secrets
    for secret in secrets:
        assert secret not in haystack
