"""Progress of long work: one live line on a terminal, plain lines otherwise.

On a terminal the latest report is drawn on one line that is rewritten in place (carriage return and
"erase line"), with the seconds since it was drawn ticking at its end; permanent lines are printed above
it. Anywhere else (a pipe, a file, CI) every report is one plain line and nothing is ever rewritten, so
logs stay readable and ``grep``-able.
"""

from __future__ import annotations

import shutil
import threading
import time
from typing import TextIO

ERASE = "\r\x1b[2K"


class Progress:
    """Reports progress to ``stream``.

    Args:
        stream: Where to write (stdout; stderr when stdout carries JSON).
        live: Draw a live line; default: when ``stream`` is a terminal.
        tick: Seconds between redraws of the live line's clock.
    """

    def __init__(self, stream: TextIO, *, live: bool | None = None, tick: float = 1.0) -> None:
        self._stream = stream
        self.live = stream.isatty() if live is None else live
        self._tick = tick
        self._text = ""
        self._since = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, text: str) -> None:
        """Report where the work is: redraws the live line, or prints one plain line."""
        if not self.live:
            self.line(text)
            return
        with self._lock:
            self._text, self._since = text, time.monotonic()
            self._draw()
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._run, name="progress", daemon=True)
            self._ticker.start()

    def line(self, text: str = "") -> None:
        """Print a permanent line (above the live line, which is drawn again below it)."""
        with self._lock:
            if self.live and self._text:
                self._stream.write(ERASE)
            self._stream.write(text + "\n")
            if self.live and self._text:
                self._draw()
            self._stream.flush()

    def close(self) -> None:
        """Erase the live line and stop its clock."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2 * self._tick)
            self._ticker = None
        with self._lock:
            if self.live and self._text:
                self._stream.write(ERASE)
                self._stream.flush()
            self._text = ""

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            with self._lock:
                if self._text:
                    self._draw()

    def _draw(self) -> None:
        elapsed = int(time.monotonic() - self._since)
        text = f"{self._text}  [{elapsed} s]" if elapsed else self._text
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        if len(text) > width:
            text = text[: width - 1] + "…"
        self._stream.write(ERASE + text)
        self._stream.flush()
