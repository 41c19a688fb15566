"""The command line installed on its own, in a fresh virtual environment, gives the operator commands with only
what they need (boto3, pydantic): no moto, DuckDB, CDK, pyarrow or test tools; `demo` and `run` name the extra
they need.

How it is installed, by default (what CI runs): uv builds this checkout's wheel (not editable: what ``pip install
.`` installs) and installs it with the runtime dependencies ``uv.lock`` pins for it, no extra and no development
group, ``--offline`` from uv's cache, which ``make setup`` filled: no network, a few seconds. That cache holds the
locked wheels but not the package index's pages that a fresh resolution needs, so ``uv tool install .`` and ``pip
install .`` themselves would have to ask the index: set ``REPORT_EXPORTER_INSTALL_FROM_INDEX=1`` to run exactly
``uv tool install .`` instead (needs the package index; a user's way of installing it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from report_exporter import __version__
from report_exporter.local import cli

ROOT = Path(__file__).resolve().parents[2]
CONFIG = '[[exports]]\nname = "particle-fleet"\nvendor = "particle"\nsecret_name = "report-exporter/particle-fleet"\n'
# uv keys its cache of a local project's built wheel on pyproject.toml alone: have it build this checkout afresh.
REBUILD = ("--refresh-package", "report-exporter", "--reinstall-package", "report-exporter")
FROM_INDEX = os.environ.get("REPORT_EXPORTER_INSTALL_FROM_INDEX") == "1"


def _uv() -> str:
    pinned = ROOT / ".tools" / "bin" / "uv"
    found = str(pinned) if pinned.exists() else shutil.which("uv")
    assert found is not None, "uv not found: `make setup` installs the pinned one into .tools/"
    return found


def _run(args: list[str], *, env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False)


def _clean_environment(where: Path) -> dict[str, str]:
    """This process's environment without its virtual environment, Python path or AWS settings, and with AWS
    configuration files that do not exist: the commands find no credentials."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_OFFLINE"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AWS_")}
    return env | {
        "UV_PYTHON_DOWNLOADS": "never", "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(where / "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(where / "no-aws-creds"),
    }


@dataclass(frozen=True)
class Installed:
    bin_dir: Path
    """Where the ``report-exporter`` command is."""
    python: Path
    """The fresh environment's interpreter."""
    env: dict[str, str]
    cwd: Path
    """Outside the checkout; holds ``exports.toml``."""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """``report-exporter`` installed from this checkout into a fresh environment (see the module docstring)."""
    where = tmp_path_factory.mktemp("fresh")
    env = _clean_environment(where)
    uv = _uv()
    if FROM_INDEX:
        tools, bin_dir = where / "tools", where / "bin"
        done = _run([uv, "tool", "install", *REBUILD, "--python", sys.executable, str(ROOT)],
                    env=env | {"UV_TOOL_DIR": str(tools), "UV_TOOL_BIN_DIR": str(bin_dir)}, cwd=where)
        assert done.returncode == 0, done.stderr[-3000:]
        python = next(tools.glob("*/bin/python"))
    else:
        venv = where / "venv"
        made = _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], env=env, cwd=where)
        assert made.returncode == 0, made.stderr
        # The locked runtime dependencies, nothing else; then this checkout, as a wheel built afresh.
        done = _run([uv, "sync", "--frozen", "--offline", "--no-dev", "--no-install-project", "--quiet"],
                    env=env | {"UV_PROJECT_ENVIRONMENT": str(venv)}, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-3000:]
        done = _run([uv, "build", "--wheel", "--offline", "--quiet", "--out-dir", str(where / "dist"), str(ROOT)],
                    env=env, cwd=where)
        assert done.returncode == 0, done.stderr[-3000:]
        (wheel,) = (where / "dist").glob("report_exporter-*.whl")
        bin_dir, python = venv / "bin", venv / "bin" / "python"
        done = _run([uv, "pip", "install", "--offline", "--no-deps", "--quiet", "--python", str(python), str(wheel)],
                    env=env, cwd=where)
        assert done.returncode == 0, done.stderr[-3000:]
        # What the wheel requires is what the lock installed: nothing missing, nothing of another version.
        done = _run([uv, "pip", "check", "--python", str(python)], env=env, cwd=where)
        assert done.returncode == 0, done.stdout + done.stderr
    (where / "exports.toml").write_text(CONFIG)
    return Installed(bin_dir=bin_dir, python=python, env=env, cwd=where)


def _command(installed: Installed, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(installed.bin_dir / "report-exporter"), *args], env=installed.env, cwd=installed.cwd,
                timeout=120)


def _one_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    (line,) = done.stderr.strip().splitlines()
    return line


def test_version(installed: Installed) -> None:
    done = _command(installed, "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"report-exporter {__version__}")


def test_status_help(installed: Installed) -> None:
    done = _command(installed, "status", "--help")
    assert done.returncode == 0, done.stderr
    assert "Show the job ledger" in done.stdout and "--json" in done.stdout


def test_backfill_dry_run(installed: Installed) -> None:
    done = _command(installed, "backfill", "--config", "exports.toml", "--export", "particle-fleet",
                    "--from", "2026-01", "--to", "2026-02", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["particle-fleet-2026-01",
                                                                         "particle-fleet-2026-02"]
    assert '"secret_name":"report-exporter/particle-fleet"' in done.stdout


def test_status_without_aws_credentials_is_one_line_and_exit_3(installed: Installed) -> None:
    line = _one_line(_command(installed, "status", "--table", "x"), cli.AWS)
    assert line.startswith("report-exporter: no AWS credentials found")


def test_status_reads_a_saved_ledger(installed: Installed) -> None:
    folder = installed.cwd / "demo-out"
    folder.mkdir(exist_ok=True)
    item = {"export": "particle-fleet", "period": "2026-10", "status": "PUBLISHED", "rows": 1200,
            "cost_usd": 0.000511, "cost_region": "us-east-1", "usage_state_transitions": 18}
    (folder / "ledger.json").write_text(json.dumps({"ledger": [item]}))
    done = _command(installed, "status", "--local", str(folder))
    assert done.returncode == 0, done.stderr
    assert "PUBLISHED" in done.stdout and "$0.000511" in done.stdout
    done = _command(installed, "status", "--local", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["cost"] == {"usd": 0.000511, "prices_region": "us-east-1", "usage": {"state_transitions": 18}}


def test_only_what_the_operator_commands_need_is_installed(installed: Installed) -> None:
    heavy = ["moto", "duckdb", "aws_cdk", "cdk_nag", "pyarrow", "httpx", "aws_lambda_powertools", "pandas", "pytest"]
    probe = f"import importlib.util as u; print(sorted(m for m in {heavy!r} if u.find_spec(m)))"
    done = _run([str(installed.python), "-c", probe], env=installed.env, cwd=installed.cwd)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stdout + done.stderr
    # And the commands do not reach into this checkout: they run from the installed package.
    where = "import report_exporter, boto3; print(report_exporter.__file__, boto3.__version__)"
    done = _run([str(installed.python), "-c", where], env=installed.env, cwd=installed.cwd)
    assert done.returncode == 0 and "site-packages" in done.stdout and str(ROOT / "functions") not in done.stdout


@pytest.mark.parametrize("args", [["demo"], ["run", "--config", "exports.toml", "--export", "particle-fleet",
                                              "--period", "2026-01"]], ids=["demo", "run"])
def test_demo_and_run_name_the_extra_they_need(installed: Installed, args: list[str]) -> None:
    line = _one_line(_command(installed, *args), cli.MISSING_EXTRA)
    assert "needs the 'local' extra" in line and "pip install 'report-exporter[local]'" in line
