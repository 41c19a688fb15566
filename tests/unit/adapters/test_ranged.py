"""One file downloaded so that a cut connection costs only the bytes not yet kept (adapters.ranged.download_file),
against a download link served through httpx.MockTransport: the bytes that land in the raw object, the Range and
If-Range headers the link receives, the cursor kept for the next attempt, the waits between tries and the errors.

tests/unit/adapters/test_resume.py runs the same code through the Particle and HERE adapters and their simulators.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from report_exporter.adapters.http_client import build_client
from report_exporter.adapters.ranged import MAX_TRIES, download_file
from report_exporter.errors import (
    VendorContractError,
    VendorRequestError,
    VendorThrottledError,
    VendorUnavailableError,
)
from tests.fakes import MemoryResumable, SleepLog

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
FILE = bytes(range(256)) * 40  # 10,240 bytes
ETAG = '"5d41402abc4b2a76b9719d911017c592"'
MODIFIED = "Mon, 02 Nov 2026 23:10:00 GMT"
GZIP_MAGIC = b"\x1f\x8b"

Answer = Callable[[httpx.Request], httpx.Response]


class Body(httpx.SyncByteStream):
    """A response body sent in pieces of the given sizes, the connection dropping after ``cut`` bytes."""

    def __init__(self, data: bytes, sizes: list[int], cut: int | None = None) -> None:
        self.data, self.sizes, self.cut = data, sizes, cut

    def __iter__(self) -> Iterator[bytes]:
        sent, sizes = 0, list(self.sizes)
        end = len(self.data) if self.cut is None else min(self.cut, len(self.data))
        while sent < end:
            size = min(sizes.pop(0) if sizes else 1000, end - sent)
            yield self.data[sent : sent + size]
            sent += size
        if self.cut is not None:
            raise httpx.ReadError("connection reset by peer")


class Link:
    """A download link: serves ``file`` whole (200) or, asked with Range, from the byte asked for (206) unless
    If-Range names another version; past the end it answers 416. ``answers`` are played first, one per request.
    ``seen`` keeps the headers of every request."""

    def __init__(self, file: bytes = FILE, *, etag: str | None = ETAG, last_modified: str | None = None,
                 accept_ranges: bool = True, serves_ranges: bool = True, sizes: list[int] | None = None,
                 content_encoding: str | None = None) -> None:
        self.file, self.etag, self.last_modified = file, etag, last_modified
        self.accept_ranges, self.serves_ranges = accept_ranges, serves_ranges
        self.sizes = sizes or []
        self.content_encoding = content_encoding
        self.answers: list[Answer] = []
        self.seen: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.headers)
        return self.answers.pop(0)(request) if self.answers else self.serve(request)

    def ranges_asked(self) -> list[tuple[str | None, str | None]]:
        return [(headers.get("range"), headers.get("if-range")) for headers in self.seen]

    def serve(self, request: httpx.Request, *, cut: int | None = None, body: bytes | None = None) -> httpx.Response:
        data = self.file if body is None else body
        headers: dict[str, str] = {}
        if self.etag is not None:
            headers["ETag"] = self.etag
        if self.last_modified is not None:
            headers["Last-Modified"] = self.last_modified
        if self.accept_ranges:
            headers["Accept-Ranges"] = "bytes"
        if self.content_encoding is not None:
            headers["Content-Encoding"] = self.content_encoding
        asked = request.headers.get("range")
        same = request.headers.get("if-range") in (None, self.etag, self.last_modified)
        if asked and self.serves_ranges and same:
            start = int(asked.removeprefix("bytes=").removesuffix("-"))
            if start >= len(data):
                return httpx.Response(416, headers={"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            headers["Content-Length"] = str(len(data) - start)
            return httpx.Response(206, headers=headers, stream=Body(data[start:], self.sizes, cut))
        headers["Content-Length"] = str(len(data))
        return httpx.Response(200, headers=headers, stream=Body(data, self.sizes, cut))

    def cut_after(self, n: int) -> Answer:
        return lambda request: self.serve(request, cut=n)


def partial(status: int, data: bytes, **headers: str) -> Answer:
    return lambda request: httpx.Response(status, headers=headers, stream=Body(data, []))


class Run:
    """One download_file call's surroundings: the raw object, the record counter it feeds, virtual time."""

    def __init__(self, link: Link, out: MemoryResumable | None = None, *, seconds_left: float | None = None) -> None:
        self.link = link
        self.out = out or MemoryResumable(part_size=1)
        self.clock = SleepLog(NOW)
        self.counted = bytearray()
        self.restarts = 0
        remaining = None
        if seconds_left is not None:
            deadline = NOW + timedelta(seconds=seconds_left)
            remaining = lambda: (deadline - self.clock.now()).total_seconds()  # noqa: E731
        self.client = build_client("https://files.test", transport=httpx.MockTransport(link), remaining=remaining)

    def restarted(self) -> None:
        self.counted.clear()
        self.restarts += 1

    def __call__(self, **kwargs: Any) -> bytes:
        download_file(self.out, lambda headers: self.client.stream("GET", "/report-r-1.csv", headers=dict(headers)),
                      vendor="acme", action="download report r-1", clock=self.clock, client=self.client,
                      feed=self.counted.extend, restarted=self.restarted, **kwargs)
        return self.out.data()

    def cursors(self) -> list[dict[str, Any] | None]:
        """The cursors checkpointed, in order (what the ledger would keep for the next attempt)."""
        return self.out.checkpoints


def resumed(kept: bytes, cursor: dict[str, Any]) -> MemoryResumable:
    """The raw object of a next attempt: the bytes an earlier one kept, and its cursor."""
    return MemoryResumable(kept, cursor, part_size=1)


def gzip_magic(head: bytes) -> None:
    if not head.startswith(GZIP_MAGIC):
        raise VendorContractError("acme download report r-1: the output is not a gzip file")


# A connection cut half-way, inside the invocation.

def test_download_file_a_cut_connection_goes_on_at_once_from_the_next_byte_of_the_same_file() -> None:
    # Given a link whose first answer drops after 3,500 bytes
    link = Link()
    link.answers.append(link.cut_after(3_500))
    run = Run(link)
    # When downloaded
    data = run()
    # Then the rest was asked for at once, from byte 3,500 and only if the file is still the same one
    assert link.ranges_asked() == [(None, None), ("bytes=3500-", ETAG)]
    assert run.clock.sleeps == [0.0]
    # And the raw object and the record counter hold the file once, without gap or duplicate
    assert data == FILE and bytes(run.counted) == FILE and run.restarts == 0
    # And every checkpoint kept the file's ETag and size for the next attempt
    assert run.cursors()[-1] == {"validator": ETAG, "length": len(FILE)}


def test_download_file_waits_1_2_4_8_seconds_between_tries_then_gives_up_after_six() -> None:
    # Given a link that answers 503 every time
    link = Link()
    link.answers.extend([partial(503, b"unavailable")] * 10)
    run = Run(link)
    # When downloaded / Then the failure goes to Step Functions after six requests
    with pytest.raises(VendorUnavailableError, match=r"acme download report r-1: vendor error \(HTTP 503\)"):
        run()
    assert len(link.seen) == MAX_TRIES == 6
    # after going on at once, then after 1, 2, 4 and 8 s
    assert run.clock.sleeps == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert run.out.data() == b""


def test_download_file_a_cut_every_try_keeps_the_bytes_of_each_and_asks_for_the_rest() -> None:
    # Given a link that drops the connection three times, after 1,000 bytes each time
    link = Link()
    link.answers.extend([link.cut_after(1_000)] * 3)
    run = Run(link)
    # When downloaded
    data = run()
    # Then each try went on where the previous one stopped, after 0, 1 and 2 s
    assert [rng for rng, _ in link.ranges_asked()] == [None, "bytes=1000-", "bytes=2000-", "bytes=3000-"]
    assert run.clock.sleeps == [0.0, 1.0, 2.0]
    assert data == FILE and bytes(run.counted) == FILE


def test_download_file_sleeps_the_retry_after_of_a_429() -> None:
    link = Link()
    link.answers.append(partial(429, b"slow down", **{"Retry-After": "30"}))
    run = Run(link, seconds_left=600)
    assert run() == FILE
    assert run.clock.sleeps == [30.0] and len(link.seen) == 2


@pytest.mark.parametrize(("seconds_left", "tried_again"), [(45.0, True), (44.9, False)],
                         ids=["the wait and a call fit", "no room for a call after the wait"])
def test_download_file_retries_only_when_the_wait_and_one_more_call_fit(seconds_left: float,
                                                                        tried_again: bool) -> None:
    # Given a 429 asking for 30 s, with 45 s left: 5 s call margin + 30 s wait + 10 s for a connection
    link = Link()
    link.answers.append(partial(429, b"slow down", **{"Retry-After": "30"}))
    run = Run(link, seconds_left=seconds_left)
    if tried_again:
        assert run() == FILE and run.clock.sleeps == [30.0]
    else:
        # Then without the room, the throttling goes to Step Functions at once, nothing slept
        with pytest.raises(VendorThrottledError) as caught:
            run()
        assert caught.value.retry_after == 30.0 and run.clock.sleeps == [] and len(link.seen) == 1


# What the next attempt is given: the bytes kept and the file's validator and size.

@pytest.mark.parametrize(("etag", "last_modified", "validator"), [
    (ETAG, MODIFIED, ETAG),
    (None, MODIFIED, MODIFIED),
    ('W/"weak-1"', MODIFIED, MODIFIED),
    ("", MODIFIED, MODIFIED),
    ('W/"weak-1"', None, None),
    (None, None, None),
], ids=["strong ETag", "Last-Modified", "weak ETag: Last-Modified", "empty ETag", "weak ETag only", "none"])
def test_download_file_if_range_names_the_strong_etag_else_the_last_modified_date(
        etag: str | None, last_modified: str | None, validator: str | None) -> None:
    # Given a link with these validators, whose first answer drops half-way
    link = Link(etag=etag, last_modified=last_modified)
    link.answers.append(link.cut_after(4_000))
    run = Run(link)
    # When downloaded
    assert run() == FILE
    # Then the rest was asked for with If-Range naming the validator (none: Range alone), which the cursor keeps
    assert link.ranges_asked()[1] == ("bytes=4000-", validator)
    assert run.cursors()[-1] == {"validator": validator, "length": len(FILE)}


def test_download_file_keeps_at_most_200_characters_of_an_etag_and_100_of_a_date() -> None:
    for etag, modified, kept in [('"' + "e" * 300 + '"', None, '"' + "e" * 199),
                                 (None, "M" * 150, "M" * 100)]:
        run = Run(Link(etag=etag, last_modified=modified))
        assert run() == FILE
        assert run.cursors()[-1] == {"validator": kept, "length": len(FILE)}


@pytest.mark.parametrize("encoding", [None, "identity", "Identity", ""])
def test_download_file_keeps_the_size_of_a_file_sent_as_is(encoding: str | None) -> None:
    run = Run(Link(content_encoding=encoding))
    assert run() == FILE
    assert run.cursors()[-1] == {"validator": ETAG, "length": len(FILE)}


def test_download_file_inflates_a_gzip_content_encoding_and_keeps_no_size_for_it() -> None:
    # Given a link that sends the file with Content-Encoding: gzip (its Content-Length is the gzip body's)
    link = Link(gzip.compress(FILE), content_encoding="gzip")
    run = Run(link)
    # When downloaded as the file (not raw)
    data = run()
    # Then the raw object is the file itself, and the cursor keeps no size that the inflated bytes would not match
    assert data == FILE and bytes(run.counted) == FILE
    assert run.cursors()[-1] == {"validator": ETAG, "length": None}


def test_download_file_raw_keeps_a_gzip_content_encoding_as_sent() -> None:
    compressed = gzip.compress(FILE)
    run = Run(Link(compressed, content_encoding="gzip"))
    assert run(raw=True) == compressed


def test_download_file_without_ranges_the_cursor_is_empty_and_a_cut_starts_over() -> None:
    # Given a link that neither offers nor serves ranges, whose first answer drops half-way
    link = Link(accept_ranges=False, serves_ranges=False)
    link.answers.append(link.cut_after(4_000))
    run = Run(link)
    # When downloaded
    data = run()
    # Then the whole file came again, the raw object and the counter started over, and no cursor was kept
    assert data == FILE and bytes(run.counted) == FILE and run.restarts == 1
    assert run.cursors() and all(cursor is None for cursor in run.cursors())


def test_download_file_a_206_to_a_range_request_makes_the_file_resumable() -> None:
    # Given a link that does not say it serves ranges (no Accept-Ranges) but answers Range with 206
    link = Link(accept_ranges=False)
    link.answers.append(link.cut_after(4_000))
    run = Run(link)
    # When its first answer drops half-way
    assert run() == FILE and run.restarts == 0
    # Then the bytes before the cut had no cursor, and those after the 206 keep one for the next attempt
    assert run.cursors()[0] is None
    assert run.cursors()[-1] == {"validator": ETAG, "length": len(FILE)}


# The next attempt.

def test_download_file_next_attempt_asks_only_for_the_bytes_not_kept() -> None:
    link = Link()
    run = Run(link, resumed(FILE[:6_000], {"validator": ETAG, "length": len(FILE)}))
    assert run() == FILE
    assert link.ranges_asked() == [("bytes=6000-", ETAG)]
    assert bytes(run.counted) == FILE[6_000:]


def test_download_file_every_byte_kept_already_ends_on_a_416() -> None:
    # Given an earlier attempt that kept the whole file
    link = Link()
    run = Run(link, resumed(FILE, {"validator": ETAG, "length": len(FILE)}))
    # When the next attempt asks for the bytes after them, and the link answers 416 "bytes */10240"
    data = run()
    # Then the download is complete as kept, nothing written again
    assert data == FILE and run.counted == b"" and link.ranges_asked() == [(f"bytes={len(FILE)}-", ETAG)]


@pytest.mark.parametrize("content_range", ["bytes */9000", None], ids=["another size", "no Content-Range"])
def test_download_file_a_416_not_matching_the_bytes_kept_is_an_error(content_range: str | None) -> None:
    # Given kept bytes past the end of the file the link serves now (it has no validator to tell)
    link = Link(etag=None)
    headers = {} if content_range is None else {"Content-Range": content_range}
    link.answers.append(partial(416, b"", **headers))
    run = Run(link, resumed(FILE, {"validator": None, "length": None}))
    # When resumed / Then the refusal is an error, not a download taken as complete
    with pytest.raises(VendorRequestError, match=r"acme download report r-1: request refused \(HTTP 416\)"):
        run()


def test_download_file_a_file_changed_since_the_bytes_kept_is_checked_again_from_its_first_byte() -> None:
    # Given 3,500 bytes kept of a gzip file, and a link that now answers the whole of something else
    link = Link(b"<html>maintenance</html>", etag='"other"')
    run = Run(link, resumed(GZIP_MAGIC + b"x" * 3_498, {"validator": ETAG, "length": 10_000}))
    # When resumed with a check of the file's first bytes / Then the new file is checked, and refused
    with pytest.raises(VendorContractError, match="not a gzip file"):
        run(check_head=gzip_magic, head_size=2)
    assert run.restarts == 1


def test_download_file_a_cursor_of_the_wrong_shape_resumes_without_validator_or_size() -> None:
    # Given kept bytes with a cursor whose validator and size are not a string and a number
    link = Link()
    run = Run(link, resumed(FILE[:3_000], {"validator": 123, "length": str(len(FILE))}))
    # When resumed / Then the rest is asked for with Range alone, and no size is held against it
    assert run() == FILE
    assert link.ranges_asked() == [("bytes=3000-", None)]


# Content-Range validation.

def test_download_file_a_206_without_content_range_is_a_contract_error() -> None:
    link = Link()
    link.answers.append(partial(206, FILE[3_000:]))
    run = Run(link, resumed(FILE[:3_000], {"validator": ETAG, "length": len(FILE)}))
    with pytest.raises(VendorContractError) as caught:
        run()
    assert str(caught.value) == "acme download report r-1: a 206 answer without a usable Content-Range"


def test_download_file_a_range_from_another_byte_is_a_contract_error() -> None:
    # Given a link that answers a request for the bytes from 3,000 with a range from byte 0
    link = Link()
    link.answers.append(partial(206, FILE, **{"Content-Range": f"bytes 0-{len(FILE) - 1}/{len(FILE)}"}))
    run = Run(link, resumed(FILE[:3_000], {"validator": ETAG, "length": len(FILE)}))
    # When resumed / Then nothing is appended, and the error says what was asked and what came
    with pytest.raises(VendorContractError) as caught:
        run()
    assert str(caught.value) == ("acme download report r-1: asked for the bytes from 3000, got a range from 0 of a "
                                 "10240-byte file (10240 expected)")
    assert run.out.data() == FILE[:3_000]


def test_download_file_a_range_of_a_file_of_another_size_is_a_contract_error() -> None:
    link = Link()
    link.answers.append(partial(206, FILE[3_000:], **{"Content-Range": "bytes 3000-12239/12240"}))
    run = Run(link, resumed(FILE[:3_000], {"validator": ETAG, "length": len(FILE)}))
    with pytest.raises(VendorContractError, match=r"got a range from 3000 of a 12240-byte file \(10240 expected\)"):
        run()
    assert run.out.data() == FILE[:3_000]


def test_download_file_a_range_of_a_file_of_unknown_size_is_accepted() -> None:
    link = Link()
    link.answers.append(partial(206, FILE[3_000:], **{"Content-Range": f"bytes 3000-{len(FILE) - 1}/*"}))
    run = Run(link, resumed(FILE[:3_000], {"validator": ETAG, "length": len(FILE)}))
    assert run() == FILE


def test_download_file_a_range_that_ends_early_is_a_contract_error() -> None:
    # Given a 206 that promises the bytes up to the end of the 10,240-byte file, and ends cleanly at byte 8,000
    link = Link()
    link.answers.append(partial(206, FILE[3_000:8_000], **{"Content-Range": f"bytes 3000-10239/{len(FILE)}"}))
    run = Run(link, resumed(FILE[:3_000], {"validator": ETAG, "length": len(FILE)}))
    with pytest.raises(VendorContractError) as caught:
        run()
    assert str(caught.value) == "acme download report r-1: got 8000 bytes of a 10240-byte file"


# The check of the file's first bytes (HERE's gzip magic number).

GZ = gzip.compress(b"month,units\n2026-10,17\n" * 50)


@pytest.mark.parametrize("sizes", [[1, 1, 5], [1, 500], [2, 3], [3], [len(GZ)]],
                         ids=["byte by byte", "magic split", "magic alone", "magic and more", "one piece"])
def test_download_file_checks_the_first_bytes_however_they_arrive(sizes: list[int]) -> None:
    run = Run(Link(GZ, sizes=sizes))
    assert run(check_head=gzip_magic, head_size=2) == GZ and bytes(run.counted) == GZ


@pytest.mark.parametrize("file", [GZIP_MAGIC, GZIP_MAGIC[:1]], ids=["just the magic", "shorter than it"])
def test_download_file_checks_a_file_no_longer_than_the_magic_number(file: bytes) -> None:
    run = Run(Link(file))
    if file == GZIP_MAGIC:
        assert run(check_head=gzip_magic, head_size=2) == GZIP_MAGIC
    else:
        with pytest.raises(VendorContractError, match="not a gzip file"):
            run(check_head=gzip_magic, head_size=2)


def test_download_file_refuses_an_empty_file_that_must_start_with_a_magic_number() -> None:
    run = Run(Link(b""))
    with pytest.raises(VendorContractError, match="not a gzip file"):
        run(check_head=gzip_magic, head_size=2)


def test_download_file_refuses_a_file_without_the_magic_number() -> None:
    run = Run(Link(b"<html>error</html>" * 10, sizes=[1, 1]))
    with pytest.raises(VendorContractError, match="not a gzip file"):
        run(check_head=gzip_magic, head_size=2)
    assert run.out.data() == b""
