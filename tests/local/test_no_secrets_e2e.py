"""For every vendor: a full run leaks no credential or issued token into logs, state payloads or errors."""

from __future__ import annotations

import io
import logging

import pytest

from report_exporter import clock
from report_exporter.local.demo import SIMULATORS, demo_exports
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import previous_period

EXPORTS = {e.vendor_name.value: e for e in demo_exports().exports}


@pytest.mark.parametrize("vendor", sorted(EXPORTS))
def test_full_run_leaks_no_secret(vendor: str, local_env: LocalEnvironment, caplog: pytest.LogCaptureFixture,
                                  capfd: pytest.CaptureFixture[str]) -> None:
    from report_exporter.observability import logger

    # Given every log line of the run is captured, at every level, from every logger
    caplog.set_level(logging.DEBUG)
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    export = EXPORTS[vendor]
    try:
        with SIMULATORS[export.vendor_name]() as sim:
            # When the demo export runs end to end
            result = local_env.run(export, period=previous_period(clock.now(), "UTC"), simulator=sim)
            secrets = [v for v in sim.credentials().values() if len(v) >= 8]
            secrets += list(getattr(sim, "issued_tokens", [])) + list(getattr(sim, "_tokens", {}))
            # Particle's signed download links: their signatures
            secrets += [r.signature for r in getattr(sim, "reports", {}).values() if getattr(r, "signature", "")]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.INFO)
    out, err = capfd.readouterr()
    # Then it succeeded and none of the credentials, nor any token the vendor issued, appears anywhere
    assert result.succeeded, result.cause
    assert "report requested" in captured.getvalue()
    haystack = "\n".join([captured.getvalue(), out, err, caplog.text, str(result.history), str(result.output)])
    assert secrets
    for secret in secrets:
        assert secret not in haystack
