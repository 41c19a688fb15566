"""``make mutate``: mutation testing of the core modules against the unit and integration tests.

mutmut 3 (pinned in uv.lock) names a mutant after its module's dotted path from the working directory,
and only knows ``./``, ``src/`` and ``source/`` as source roots; the Lambda package lives in
``functions/``. So this script stages a workspace under ``.build/mutate/`` (``src/report_exporter`` =
``functions/report_exporter``, plus the tests and what they read), configures mutmut there, runs it,
and prints the score per module. The code is not moved.

Surviving mutants that cannot change behaviour are listed in ``tests/mutation/allowlist.toml``, grouped
under the reason they cannot; they are left out of the score and counted apart.

Usage::

    .venv/bin/python tests/mutation/mutate.py [module ...]   # e.g. logic/check_report.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".build" / "mutate"
CORE = [
    "logic/plan_run.py",
    "logic/check_report.py",
    "logic/request_report.py",
    "logic/download_report.py",
    "logic/write_parquet.py",
    "logic/record_failure.py",
    "logic/end_run.py",
    "aws/ledger.py",
    "ports.py",
    "datasets/base.py",
    "datasets/csvread.py",
    "datasets/values.py",
    "adapters/base.py",
    "adapters/http_client.py",
    "adapters/csv_records.py",
    "vendors/particle/adapter.py",
]
TESTS = ["tests/unit", "tests/integration"]
# What mutmut's statuses mean for the score: a mutant no test runs ("no tests") survived.
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}


def stage(modules: list[str]) -> None:
    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "src").mkdir(parents=True)
    shutil.copytree(ROOT / "functions" / "report_exporter", WORK / "src" / "report_exporter",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("tests", "infra", "events"):
        shutil.copytree(ROOT / folder, WORK / folder, ignore=shutil.ignore_patterns("__pycache__", "cdk.out",
                                                                                     "node_modules"))
    # Tests that read files by path (configs, requirement pins) find them where they are in the repository;
    # the package there is not on sys.path, so imports get the mutated copy under src/.
    shutil.copytree(ROOT / "functions", WORK / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "uv.lock", WORK / "uv.lock")
    shutil.copy2(ROOT / "tests" / "mutation" / "hang_guard.py", WORK / "conftest.py")
    text = (ROOT / "pyproject.toml").read_text()
    text = text.replace('pythonpath = ["functions", "infra", "."]', 'pythonpath = ["infra", "."]')
    also = ", ".join(f'"{p}"' for p in ["infra/", "events/", "functions/", "conftest.py"])
    only = ", ".join(f'"src/report_exporter/{m}"' for m in modules)
    tests = ", ".join(f'"{t}"' for t in TESTS)
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src/report_exporter"]\n'
        f"only_mutate = [{only}]\n"
        f"also_copy = [{also}]\n"
        f"pytest_add_cli_args_test_selection = [{tests}]\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
        # A mutant that deadlocks a reader or writer thread uses no CPU: only mutmut's wall-clock limit,
        # (estimated test time + constant) * multiplier, ends it. The default 15x spent six minutes on each
        # such mutant of the CSV reader (why the first full run never finished); 5x still leaves room for a
        # loaded machine (a surviving mutant runs its tests in about the estimated time).
        "timeout_multiplier = 5.0\n"
        "timeout_constant = 5.0\n"
    )
    (WORK / "pyproject.toml").write_text(text)


def results() -> dict[str, dict[str, int]]:
    """mutant name -> exit code, from mutmut's meta files."""
    codes: dict[str, dict[str, int]] = {}
    for meta in (WORK / "mutants" / "src" / "report_exporter").rglob("*.meta"):
        module = str(meta.relative_to(WORK / "mutants" / "src" / "report_exporter")).removesuffix(".meta")
        data = json.loads(meta.read_text())
        codes[module] = {name: code for name, code in data.get("exit_code_by_key", {}).items() if code is not None}
    return codes


def main(argv: list[str]) -> int:
    modules = argv or CORE
    stage(modules)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    mutmut = Path(sys.executable).with_name("mutmut")
    log = WORK / "mutmut.log"
    with log.open("w") as out:
        subprocess.run([str(mutmut), "run", "--max-children", str(os.cpu_count() or 2)], cwd=WORK, env=env,
                       check=False, stdout=out, stderr=subprocess.STDOUT)
    found = results()
    missing = [m for m in modules if not found.get(m)]
    if missing:
        # Typically a test failing on the unmutated code (mutmut stops before mutating anything).
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-30:]
        print(f"no results for {', '.join(missing)}; the end of {log.relative_to(ROOT)}:", *tail, sep="\n")
        return 2
    allowed = {name for group in tomllib.loads((ROOT / "tests" / "mutation" / "allowlist.toml").read_text())["allow"]
               for name in group["mutants"]}
    print(f"\n{'module':<28} {'mutants':>8} {'killed':>7} {'allowed':>8} {'survived':>9} {'score':>6}")
    failing = False
    survivors: list[str] = []
    stale: list[str] = []
    from mutmut.stats import status_by_exit_code

    for module, codes in sorted(found.items()):
        counts = Counter("killed" if status_by_exit_code[code] in CAUGHT else "survived" for code in codes.values())
        left = [name for name, code in codes.items() if status_by_exit_code[code] not in CAUGHT]
        allow = [name for name in left if name in allowed]
        survived = [name for name in left if name not in allowed]
        total = len(codes) - len(allow)
        score = 100.0 * counts["killed"] / total if total else 100.0
        failing |= score < 90
        survivors += survived
        dotted = "report_exporter." + module.removesuffix(".py").replace("/", ".") + "."
        stale += [name for name in allowed if name.startswith(dotted) and name not in left]
        print(f"{module:<28} {len(codes):>8} {counts['killed']:>7} {len(allow):>8} {len(survived):>9} {score:>5.1f}%")
    if stale:
        # Killed by a test now, or renumbered because the function changed: drop them from the allow-list.
        print(f"\n{len(stale)} allow-list entries no longer survive:", *sorted(stale), sep="\n  ")
    if survivors:
        report = WORK / "survivors.diff"
        with report.open("w") as out:
            for name in sorted(survivors):
                shown = subprocess.run([str(mutmut), "show", name], cwd=WORK, capture_output=True, text=True)
                out.write(shown.stdout + "\n")
        print(f"\n{len(survivors)} survivors; their diffs: {report.relative_to(ROOT)}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
