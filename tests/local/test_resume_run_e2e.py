"""A local ``run`` killed while its report is pending, rerun with the same ``--out``: no second vendor report.

The first run is a real process, killed with SIGKILL (no clean-up of any kind) once its ledger says the
report is PENDING; the rerun is the CLI in this process. The vendor is a simulator on loopback that
outlives both, as a vendor would.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from report_exporter.local.cli import main
from report_exporter.local.persist import LocalState
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.local.conftest import PERIOD

ROOT = Path(__file__).resolve().parents[2]


def files(tmp_path: Path, sim: ParticleSimulator) -> tuple[Path, Path]:
    config = tmp_path / "exports.toml"
    config.write_text(f'''[[exports]]
name = "particle-fleet"
vendor = "particle"
secret_name = "report-exporter/particle-fleet"
base_url = "{sim.base_url}"
''')
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"report-exporter/particle-fleet": sim.credentials()}))
    return config, secrets


def saved_status(out: Path) -> str | None:
    try:
        items = json.loads((out / ".state" / "ledger.json").read_text())
    except (OSError, ValueError):
        return None
    return next((i["status"]["S"] for i in items if i["pk"]["S"] == "EXPORT#particle-fleet"), None)


def creates(sim: ParticleSimulator) -> int:
    return len([c for c in sim.calls("POST") if "reports" in c.path])


def test_a_run_killed_while_its_report_is_pending_is_resumed_by_a_rerun_with_the_same_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with ParticleSimulator(pending_polls=10_000, rows=120) as sim:
        config, secrets = files(tmp_path, sim)
        args = ["run", "--config", str(config), "--export", "particle-fleet", "--period", PERIOD,
                "--secrets", str(secrets), "--out", str(out)]
        # Given a run (in real time) whose report stays pending at the vendor
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("functions", "infra", "."))}
        first = subprocess.Popen([sys.executable, "-m", "report_exporter.local.cli", *args], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # (no wall-clock assertion: this only bounds how long a broken run may keep the test waiting)
            give_up = time.monotonic() + 300
            while saved_status(out) != "PENDING" and first.poll() is None and time.monotonic() < give_up:
                time.sleep(0.05)
            assert saved_status(out) == "PENDING", first.stderr.read().decode()[-2000:] if first.stderr else ""
        finally:
            # When the process is killed outright
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert creates(sim) == 1
        (report_id,) = sim.reports
        # And the report becomes ready at the vendor; the same command runs again (on virtual time: no real waits)
        sim.pending_polls = 0
        code = main([*args, "--virtual-time"])
        printed = capsys.readouterr()
        # Then the rerun resumed the open report: the vendor was asked for one report in all
        assert code == 0, printed.err
        assert creates(sim) == 1
        assert f"resuming the execution an earlier run left with report {report_id} PENDING" in printed.out
        # And the month was published from that report
        state = json.loads((out / ".state" / "ledger.json").read_text())
        (item,) = [i for i in state if i["pk"]["S"] == "EXPORT#particle-fleet"]
        assert item["status"]["S"] == "PUBLISHED" and item["report_id"]["S"] == report_id
        parquet = out / f"curated/particle_data_operations/export=particle-fleet/period={PERIOD}/data.parquet"
        assert pq.read_table(io.BytesIO(parquet.read_bytes())).num_rows == 120
        assert (out / f"raw/particle/particle-fleet/{PERIOD}/report-{report_id}.csv").is_file()
        # And --fresh starts over: a new report is requested
        code = main([*args, "--virtual-time", "--fresh"])
        assert code == 0, capsys.readouterr().err
        assert creates(sim) == 2


def test_two_runs_cannot_share_one_out(tmp_path: Path) -> None:
    from report_exporter.errors import ExporterError

    with LocalState(tmp_path), pytest.raises(ExporterError, match="another report-exporter run is using"), \
            LocalState(tmp_path):
        pass


def test_a_saved_ledger_that_is_not_one_is_refused_with_its_path(tmp_path: Path) -> None:
    from report_exporter.errors import ExporterError

    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / "ledger.json").write_text("{not json")
    with LocalState(tmp_path) as state, pytest.raises(ExporterError, match=r"ledger\.json is not the JSON"):
        state.saved_items()
