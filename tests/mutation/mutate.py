"""``make mutate``: mutation testing of the core modules against the unit and integration tests.

mutmut 3 (pinned in uv.lock) names a mutant after its module's dotted path from the working directory,
and only knows ``./``, ``src/`` and ``source/`` as source roots; the Lambda package lives in
``functions/``. So this script stages a workspace under ``.build/mutate/`` (``src/report_exporter`` =
``functions/report_exporter``, plus the tests and what they read), configures mutmut there, runs it,
and prints the score per module. The code is not moved.

Surviving mutants that cannot change behaviour are listed in ``tests/mutation/allowlist.toml``, grouped
under the reason they cannot; they are left out of the score and counted apart.

Runs are incremental: ``.build/mutate/mutants`` keeps mutmut's verdicts, and mutmut tests again every mutant
of a function whose source changed (it hashes each function). Before each run this script also forgets the
verdict of every mutant that was not caught and is not allow-listed, so survivors always meet the current
tests, and which tests run which function is measured afresh. ``--fresh`` (``make
mutate FRESH=1``) starts from nothing: use it after deleting or weakening tests, which could let a mutant
that was caught before survive unseen.

Usage::

    .venv/bin/python tests/mutation/mutate.py [--fresh] [module ...]   # e.g. logic/check_report.py
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
    "adapters/auth.py",
    "adapters/csv_records.py",
    "adapters/in_place.py",
    "adapters/ranged.py",
    "adapters/ndjson.py",
    "datasets/ndjson.py",
    "aws/s3.py",
    *[f"vendors/{vendor}/{module}.py" for vendor in ("particle", "here", "telnyx", "senet", "kore")
      for module in ("adapter", "dataset")],
]
TESTS = ["tests/unit", "tests/integration"]
# What mutmut's statuses mean for the score: a mutant no test runs ("no tests") survived.
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}


def caught(code: int) -> bool:
    """Whether a mutant's exit code means a test noticed it. A test process killed by a signal (pyarrow
    aborting on a mutated argument: SIGABRT) noticed it too; mutmut files those under "suspicious"."""
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code] in CAUGHT or code < 0


def stage(modules: list[str], *, fresh: bool) -> None:
    """Lay out the workspace; keep mutmut's verdicts in ``mutants/`` unless ``fresh``."""
    if fresh and WORK.exists():
        shutil.rmtree(WORK)
    for folder in ("src", "tests", "infra", "events", "functions", "docs"):
        shutil.rmtree(WORK / folder, ignore_errors=True)
        if folder != "src":
            # mutmut copies these into mutants/ over what is there: a stale copy of a moved test would run.
            shutil.rmtree(WORK / "mutants" / folder, ignore_errors=True)
    (WORK / "src").mkdir(parents=True)
    shutil.copytree(ROOT / "functions" / "report_exporter", WORK / "src" / "report_exporter",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("tests", "infra", "events"):
        shutil.copytree(ROOT / folder, WORK / folder, ignore=shutil.ignore_patterns("__pycache__", "cdk.out",
                                                                                     "node_modules"))
    # Tests that read files by path (configs, requirement pins) find them where they are in the repository;
    # the package there is not on sys.path, so imports get the mutated copy under src/.
    shutil.copytree(ROOT / "functions", WORK / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "docs", WORK / "docs")
    for name in ("uv.lock", "README.md"):  # read by tests (pins; the README's tables)
        shutil.copy2(ROOT / name, WORK / name)
    shutil.copy2(ROOT / "tests" / "mutation" / "hang_guard.py", WORK / "conftest.py")
    text = (ROOT / "pyproject.toml").read_text()
    text = text.replace('pythonpath = ["functions", "infra", "."]', 'pythonpath = ["infra", "."]')
    also = ", ".join(f'"{p}"' for p in ["infra/", "events/", "functions/", "docs/", "README.md", "conftest.py"])
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
    # Which tests run which function is measured again on every run: mutmut's own incremental stats missed
    # the tests of a module that had moved, leaving its mutants "without tests". Verdicts stay cached.
    (WORK / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    # Drop the mutated copies (and verdicts) of modules that no longer exist; mutmut regenerates the others.
    mutated = WORK / "mutants" / "src"
    for path in sorted(mutated.rglob("*")) if mutated.exists() else []:
        source = WORK / "src" / path.relative_to(mutated)
        stem = source.with_name(source.name.removesuffix(".meta").removesuffix(".spans"))
        if path.is_file() and not (source.exists() or stem.exists()):
            path.unlink()
    # A run over other modules leaves a plain copy of these (no mutants) that is newer than the source, which
    # mutmut takes for "already mutated, unchanged": it would find no mutant and no test. Make it mutate them.
    for module in modules:
        copy = mutated / "report_exporter" / module
        if copy.exists() and copy.read_bytes() == (WORK / "src" / "report_exporter" / module).read_bytes():
            copy.unlink()


def _metas() -> dict[str, Path]:
    """module -> mutmut's meta file of it (verdicts and function hashes)."""
    root = WORK / "mutants" / "src" / "report_exporter"
    return {str(meta.relative_to(root)).removesuffix(".meta"): meta for meta in root.rglob("*.meta")}


def allow_listed() -> set[str]:
    """The mutants ``tests/mutation/allowlist.toml`` lists as unable to change behaviour."""
    groups = tomllib.loads((ROOT / "tests" / "mutation" / "allowlist.toml").read_text())["allow"]
    return {name for group in groups for name in group["mutants"]}


def forget_survivors(modules: list[str]) -> None:
    """Clear the verdict of every mutant of ``modules`` that was not caught, so that this run tests it again.

    Allow-listed survivors keep theirs: no test can catch them. mutmut still tests one again when its
    function changes (the function's hash clears the verdict), and an entry whose mutant no longer survives
    is reported as stale.
    """
    allowed = allow_listed()
    for module, meta in _metas().items():
        if module not in modules:
            continue
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        for name, code in codes.items():
            if code is not None and not caught(code) and name not in allowed:
                codes[name] = None
        meta.write_text(json.dumps(data))


def results(modules: list[str]) -> dict[str, dict[str, int]]:
    """module -> mutant name -> exit code, from mutmut's meta files (modules no longer listed are left out)."""
    codes: dict[str, dict[str, int]] = {}
    for module, meta in _metas().items():
        if module in modules:
            data = json.loads(meta.read_text())
            codes[module] = {name: code for name, code in data.get("exit_code_by_key", {}).items()
                             if code is not None}
    return codes


def main(argv: list[str]) -> int:
    fresh = "--fresh" in argv
    modules = [arg for arg in argv if arg != "--fresh"] or CORE
    stage(modules, fresh=fresh)
    forget_survivors(modules)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    mutmut = Path(sys.executable).with_name("mutmut")
    log = WORK / "mutmut.log"
    with log.open("w") as out:
        children = os.environ.get("MUTATE_CHILDREN") or str(os.cpu_count() or 2)
        subprocess.run([str(mutmut), "run", "--max-children", children], cwd=WORK, env=env,
                       check=False, stdout=out, stderr=subprocess.STDOUT)
    found = results(modules)
    missing = [m for m in modules if not found.get(m)]
    if missing:
        # Typically a test failing on the unmutated code (mutmut stops before mutating anything).
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-30:]
        print(f"no results for {', '.join(missing)}; the end of {log.relative_to(ROOT)}:", *tail, sep="\n")
        return 2
    allowed = allow_listed()
    print(f"\n{'module':<28} {'mutants':>8} {'killed':>7} {'allowed':>8} {'survived':>9} {'score':>6}")
    failing = False
    survivors: list[str] = []
    stale: list[str] = []

    for module, codes in sorted(found.items()):
        counts = Counter("killed" if caught(code) else "survived" for code in codes.values())
        left = [name for name, code in codes.items() if not caught(code)]
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
