"""Progress: one live line rewritten in place on a terminal; plain lines, never rewritten, anywhere else."""

from __future__ import annotations

import io

from report_exporter.local.progress import ERASE, Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_every_report_is_a_plain_line() -> None:
    out = io.StringIO()
    with Progress(out) as progress:
        progress("waiting 15 s before poll 1")
        progress.line("RequestReport done")
        progress("waiting 30 s before poll 2")
    assert out.getvalue() == "waiting 15 s before poll 1\nRequestReport done\nwaiting 30 s before poll 2\n"
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_on_a_terminal_the_live_line_is_redrawn_and_erased_at_the_end() -> None:
    out = Terminal()
    with Progress(out, tick=0.01) as progress:
        assert progress.live
        progress("waiting 15 s before poll 1")
        progress.line("1/3 started")
        progress("waiting 30 s before poll 2")
    text = out.getvalue()
    # Each report redraws the one line; permanent lines are printed above it; the end erases it.
    assert text.startswith(ERASE + "waiting 15 s before poll 1")
    assert ERASE + "1/3 started\n" + ERASE + "waiting 15 s before poll 1" in text
    assert ERASE + "waiting 30 s before poll 2" in text
    assert text.endswith(ERASE)
    assert "\n" not in text.replace("1/3 started\n", "")
