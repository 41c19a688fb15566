"""Downloading one file so that a cut connection costs only the bytes not yet kept.

Where the server serves byte ranges (``Accept-Ranges: bytes``, or a ``206`` to a ``Range`` request, as
S3 pre-signed links do), a download that breaks goes on with ``Range: bytes=<offset>-`` from the first
byte not yet written: in place, inside the invocation, from what it holds in memory; in the next
attempt, from the last part kept in S3. ``If-Range`` with the file's ETag makes sure the rest belongs to
the same file. A server that answers a range request with the whole file (``200``), or whose file
changed, is read again from the first byte: the raw object starts over and the hashes stay exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager

import httpx

from report_exporter.adapters.base import ResumableWriter
from report_exporter.adapters.http_client import raise_for_status, transport_errors
from report_exporter.adapters.in_place import fits
from report_exporter.clock import Clock
from report_exporter.errors import VendorContractError, VendorThrottledError, VendorUnavailableError

# Requests in all for one file inside one invocation: the first and the ones that go on after a failure.
MAX_TRIES = 6
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED = re.compile(r"^bytes\s+\*/(\d+)$")

Opener = Callable[[Mapping[str, str]], AbstractContextManager[httpx.Response]]
"""Opens the file's response with these extra headers (the adapter adds its auth, its fresh link, and
handles its own refusals: an expired link, a stale token)."""


def download_file(
    out: ResumableWriter,
    open_file: Opener,
    *,
    vendor: str,
    action: str,
    clock: Clock,
    client: httpx.Client,
    feed: Callable[[bytes], None],
    restarted: Callable[[], None],
    raw: bool = False,
    check_head: Callable[[bytes], None] | None = None,
    head_size: int = 0,
) -> None:
    """Stream a file into ``out`` from where ``out`` stands, going on after failures where the server allows.

    Args:
        out: The raw object (its :attr:`~ResumableWriter.resumed` cursor holds the file's ETag and size).
        open_file: Opens the file's response with extra headers (``Range``, ``If-Range``).
        vendor, action: For error messages.
        clock: Where waits are slept.
        client: The client ``open_file`` uses; its invocation budget bounds the retries in place.
        feed: Called with every byte written (a record counter).
        restarted: Called when the object starts over from the first byte (reset what ``feed`` counted).
        raw: Keep the bytes as sent (``iter_raw``: a gzip file served with ``Content-Encoding: gzip``).
        check_head: Called once with the first ``head_size`` bytes of the file (a magic number check).

    Raises:
        VendorUnavailableError, VendorThrottledError: the server kept failing; what is kept in S3 stays for
            the next attempt.
    """
    saved = dict(out.resumed or {})
    validator = saved.get("validator") if isinstance(saved.get("validator"), str) else None
    length = saved.get("length") if isinstance(saved.get("length"), int) else None
    ranges = bool(saved)  # an earlier attempt kept a cursor: the server served ranges then
    tries = 0
    while True:
        tries += 1
        offset = out.tell()
        headers: dict[str, str] = {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        try:
            with transport_errors(vendor, action), open_file(headers) as response:
                status = response.status_code
                if offset and status == 416 and _unsatisfied_total(response) == offset:
                    return  # every byte was kept already
                raise_for_status(response, vendor=vendor, action=action, ok=(200, 206), now=clock.now())
                if status == 206:
                    start, total = _content_range(response, vendor=vendor, action=action)
                    if start != offset or (length is not None and total is not None and total != length):
                        raise VendorContractError(
                            f"{vendor} {action}: asked for the bytes from {offset}, got a range from {start} of a "
                            f"{total}-byte file ({length} expected)"
                        )
                    ranges = True
                else:
                    if offset:
                        # The whole file again (no range support, or the file changed): start over.
                        out.restart()
                        restarted()
                        offset = 0
                    validator = _validator(response)
                    length = _length(response)
                    ranges = response.headers.get("accept-ranges", "").strip().lower() == "bytes"
                cursor = {"validator": validator, "length": length} if ranges else None
                # As the bytes arrive (no chunk_size): httpx would hold up to a chunk back, and lose it on a reset.
                chunks = response.iter_bytes() if response.is_stream_consumed or not raw else response.iter_raw()
                if offset == 0 and check_head is not None:
                    chunks = _checked(chunks, check_head, head_size)
                for chunk in chunks:
                    feed(chunk)
                    out.write(chunk)
                    out.checkpoint(cursor)
            if length is not None and out.tell() != length:
                raise VendorContractError(f"{vendor} {action}: got {out.tell()} bytes of a {length}-byte file")
            return
        except (VendorUnavailableError, VendorThrottledError) as exc:
            failure = exc
        # A transient failure: go on in place (from the first byte not written, or from 0 without ranges), at
        # once after the first, then after 1, 2, 4 ... s or the server's Retry-After.
        hint = failure.retry_after if isinstance(failure, VendorThrottledError) else None
        wait = hint if hint is not None else (0.0 if tries == 1 else float(2 ** (tries - 2)))
        if tries >= MAX_TRIES or not fits(client, wait):
            raise failure from None
        clock.sleep(wait)


def _checked(chunks: Iterator[bytes], check: Callable[[bytes], None], size: int) -> Iterator[bytes]:
    head = b""
    for chunk in chunks:
        if len(head) < size:
            head += chunk
            if len(head) < size:
                continue
            check(head)
            yield head
            continue
        yield chunk
    if len(head) < size:
        check(head)
        if head:
            yield head


def _content_range(response: httpx.Response, *, vendor: str, action: str) -> tuple[int, int | None]:
    match = _CONTENT_RANGE.match(response.headers.get("content-range", "").strip())
    if match is None:
        raise VendorContractError(f"{vendor} {action}: a 206 answer without a usable Content-Range")
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def _unsatisfied_total(response: httpx.Response) -> int | None:
    match = _UNSATISFIED.match(response.headers.get("content-range", "").strip())
    return int(match.group(1)) if match else None


def _validator(response: httpx.Response) -> str | None:
    """A strong ETag (``If-Range`` accepts no weak one), else Last-Modified; what tells the same file apart."""
    etag = str(response.headers.get("etag", "")).strip()
    if etag and not etag.startswith("W/"):
        return etag[:200]
    modified = str(response.headers.get("last-modified", "")).strip()
    return modified[:100] or None


def _length(response: httpx.Response) -> int | None:
    """The file's size from a 200 answer sent as is (a content-coded body's length is not the file's)."""
    value = response.headers.get("content-length", "")
    if not value.isdigit() or response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        return None
    return int(value)

