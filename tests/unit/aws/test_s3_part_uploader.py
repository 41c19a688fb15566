"""The part uploader thread of a raw download: parts go to S3 in order, in bounded memory, and stop at the first error.

S3 is a ``send`` function here (what the writer passes is ``upload_part``); what it receives is what S3 would.
"""

from __future__ import annotations

import threading

import pytest

from report_exporter.aws.s3 import PartUploader
from tests.fakes import fresh_python

BOUND = 300  # a bound so that a broken uploader fails the test instead of hanging it; never reached when it works


class Refused(Exception):
    pass


class FakeS3:
    """Records every part it is sent; holds part ``hold`` until :meth:`release`, then refuses part ``refuse``."""

    def __init__(self, *, hold: int = 0, refuse: int = 0) -> None:
        self.log: list[str] = []
        self.sent: list[int] = []
        self.holding = threading.Event()
        self._gate = threading.Event()
        self._hold, self._refuse = hold, refuse

    def release(self) -> None:
        self._gate.set()

    def __call__(self, number: int, body: bytearray) -> str:
        self.sent.append(number)
        if number == self._hold:
            self.holding.set()
            assert self._gate.wait(timeout=BOUND), "part held for ever"
        if number == self._refuse:
            raise Refused(f"part {number}")
        self.log.append(f"uploaded {number}")
        return f"etag-{number}-{bytes(body).decode()}"


def test_parts_go_up_in_order_and_each_etag_is_reported_once() -> None:
    s3 = FakeS3()
    uploader = PartUploader(s3, window=1)
    for number in (1, 2, 3):
        uploader.submit(number, bytearray(f"p{number}".encode()))
    uploader.wait()
    assert uploader.finished() == [(1, "etag-1-p1"), (2, "etag-2-p2"), (3, "etag-3-p3")]
    assert uploader.finished() == []
    uploader.close()
    assert s3.sent == [1, 2, 3]


def test_a_window_of_one_holds_the_next_part_until_the_one_on_its_way_is_uploaded() -> None:
    # Given part 1 on its way to S3, held there
    s3 = FakeS3(hold=1)
    uploader = PartUploader(s3, window=1)
    uploader.submit(1, bytearray(b"a"))
    assert s3.holding.wait(timeout=BOUND)
    # When the download hands over part 2 (on another thread, since it blocks)
    handed = threading.Thread(target=lambda: (uploader.submit(2, bytearray(b"b")), s3.log.append("handed 2")))
    handed.start()
    handed.join(timeout=0.5)  # (gives a broken uploader the time to let it through)
    s3.release()
    handed.join(timeout=BOUND)
    uploader.wait()
    uploader.close()
    # Then part 2 was taken only once part 1 was uploaded: at most one part in memory besides the one filling
    assert s3.log == ["uploaded 1", "handed 2", "uploaded 2"]


def test_before_runs_once_the_part_ahead_is_uploaded_and_before_the_next_one_is_sent() -> None:
    # Given part 1 on its way to S3, held there
    s3 = FakeS3(hold=1)
    uploader = PartUploader(s3, window=1)
    uploader.submit(1, bytearray(b"a"))
    assert s3.holding.wait(timeout=BOUND)
    seen: list[list[tuple[int, str]]] = []

    def before() -> None:
        seen.append(uploader.finished())
        s3.log.append("before 2")

    # When part 2 is handed over with a step to run first (on another thread, since it blocks)
    handed = threading.Thread(target=uploader.submit, args=(2, bytearray(b"b")), kwargs={"before": before})
    handed.start()
    handed.join(timeout=0.5)  # (gives a broken uploader the time to run it early)
    s3.release()
    handed.join(timeout=BOUND)
    uploader.wait()
    uploader.close()
    # Then the step ran after part 1 was uploaded, saw it finished, and part 2 went up only after it
    assert s3.log == ["uploaded 1", "before 2", "uploaded 2"] and seen == [[(1, "etag-1-a")]]


def test_a_step_before_a_part_that_fails_hands_nothing_over_and_frees_the_slot() -> None:
    s3 = FakeS3()
    uploader = PartUploader(s3, window=1)

    def lease_lost() -> None:
        raise Refused("lease lost")

    # When the step before part 1 fails / Then its error reaches the caller and part 1 is not sent
    with pytest.raises(Refused, match="lease lost"):
        uploader.submit(1, bytearray(b"a"), before=lease_lost)
    # And the slot is free again: the next part goes up (a lost slot would block this hand-over for ever)
    done = threading.Thread(target=uploader.submit, args=(2, bytearray(b"b")))
    done.start()
    done.join(timeout=BOUND)
    uploader.wait()
    uploader.close()
    assert not done.is_alive() and s3.sent == [2]


def test_wait_returns_only_when_every_part_handed_over_is_uploaded() -> None:
    # Given two parts handed over (a window of two), the second held on its way
    s3 = FakeS3(hold=2)
    uploader = PartUploader(s3, window=2)
    uploader.submit(1, bytearray(b"a"))
    uploader.submit(2, bytearray(b"b"))
    assert s3.holding.wait(timeout=BOUND)
    # When the caller waits for them (on another thread, since it blocks)
    seen: list[list[tuple[int, str]]] = []
    waiting = threading.Thread(target=lambda: (uploader.wait(), seen.append(uploader.finished())))
    waiting.start()
    waiting.join(timeout=0.5)  # (gives a broken uploader the time to return early)
    s3.release()
    waiting.join(timeout=BOUND)
    uploader.close()
    # Then it saw both parts uploaded: the upload can be completed with all of them
    assert seen == [[(1, "etag-1-a"), (2, "etag-2-b")]]


def test_after_a_refused_part_the_parts_behind_it_are_not_sent_and_the_error_reaches_the_caller() -> None:
    # Given part 1 held on its way, part 2 queued behind it (a window of two), then S3 refuses part 1
    s3 = FakeS3(hold=1, refuse=1)
    uploader = PartUploader(s3, window=2)
    uploader.submit(1, bytearray(b"a"))
    uploader.submit(2, bytearray(b"b"))
    s3.release()
    # When the caller waits / Then the refusal is raised on its thread, and part 2 never went to S3
    with pytest.raises(Refused, match="part 1"):
        uploader.wait()
    assert s3.sent == [1] and uploader.finished() == []
    # And every later hand-over raises it again instead of sending
    with pytest.raises(Refused, match="part 1"):
        uploader.submit(3, bytearray(b"c"))
    uploader.close()
    assert s3.sent == [1]


def test_an_uploader_never_closed_does_not_keep_the_process_alive() -> None:
    # Given a process that hands a part over and ends (a timeout, a kill) while the part is still on its way
    code = (
        "import threading\n"
        "from report_exporter.aws.s3 import PartUploader\n"
        "uploader = PartUploader(lambda number, body: threading.Event().wait(), window=1)\n"
        "uploader.submit(1, bytearray(b'x'))\n"
        "print('handed over', flush=True)\n"
    )
    # When it exits / Then it does: the uploader thread does not hold the interpreter open
    done = fresh_python(code, timeout=BOUND)
    assert (done.returncode, done.stdout) == (0, "handed over\n"), done.stderr
