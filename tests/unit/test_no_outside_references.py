"""Every reference in the repository leads somewhere: no tracked file points at the team's documents outside it.

Vendor facts live in ``vendors/<vendor>/facts.py`` with their public sources; measurements are stated
where they are used.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The team's documents that are not in the repository, and the "seed" files the vendor facts came from.
OUTSIDE = re.compile(r"vendors\.md|perf-baseline|feasibility\.md|DESIGN\.md|STYLE\.md|\bseed \d{3}\b")


def offending_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if OUTSIDE.search(line)]


def test_no_tracked_file_refers_to_a_document_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [p for p in tracked.decode().split("\0") if p and p != "tests/unit/test_no_outside_references.py"]
    assert len(paths) > 100
    found: dict[str, list[str]] = {}
    for path in paths:
        try:
            text = (ROOT / path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        if lines := offending_lines(text):
            found[path] = lines
    assert found == {}


def test_the_check_finds_each_kind_of_outside_reference() -> None:
    assert offending_lines("a (vendors.md §1.5)\nb (seed 004)\nc perf-baseline.md\nd DESIGN.md\ne fine") == [
        "a (vendors.md §1.5)", "b (seed 004)", "c perf-baseline.md", "d DESIGN.md"]
