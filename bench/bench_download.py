"""Benchmark, goal P2 of issue 11: DownloadReport's wall against a plain download and a plain upload of the same file.

Run from the repository root (see bench/README.md)::

    .venv/bin/python bench/bench_download.py              # a 1 GiB Particle report, 1 warm-up + 3 rounds
    .venv/bin/python bench/bench_download.py --mib 256 --runs 1

Four variants, each a fresh process, interleaved round by round (A B C D A B C D ...):

* ``download``: DownloadReport as deployed (the Particle adapter: status -> signed link -> stream into an S3
  multipart upload, 8 MiB parts, each part hashed and uploaded by a thread of its own while the download
  fills the next);
* ``download-serial``: the same with each part hashed and uploaded inside the download loop
  (``UPLOAD_WINDOW`` 0, as before issue 11): what the overlap buys, in the same rounds;
* ``plain-download``: the same signed link streamed with httpx into nothing;
* ``plain-upload``: the same file read from disk (page cache) and uploaded with the same S3 calls, one 8 MiB
  part after the other.

The goal: DownloadReport's wall ≤ 1.15 x max(plain download, plain upload), the ratio taken round by round
and its median printed; and its peak RSS ≤ 64 MiB above the process's own baseline (its RSS once imports and
set-up are done). The vendor simulator and the S3 stand-in each run in a world process of their own, so
serving one does not slow the other down (as with a real vendor and S3). The S3 stand-in answers the
multipart calls and keeps nothing (see ``serve_null_s3``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bench_particle
import harness

PART = 8 * 1024 * 1024
WALL_GOAL = 1.15
PEAK_GOAL_MIB = 64
# Each world serves at most this many Mbit/s (100 MB/s), about what one connection of a Lambda function
# moves to or from S3: unpaced, the vendor, S3 and the function all want CPU from the same two vCPUs, and
# the bench would measure their sum (bench/README.md).
LINK_MBPS = 800.0


def generate(path: Path, mib: int) -> None:
    """A Particle report of at least ``mib`` MiB: the 1M-row report's preamble and header, its rows repeated."""
    rows_file = bench_particle.VENDOR.source(1_000_000)
    bench_particle.generate(rows_file, 1_000_000)
    marker = path.with_name(path.name + ".mib")
    if path.exists() and marker.exists() and marker.read_text() == str(mib):
        return
    # In blocks (the measured processes are forked from this one: a big heap here would count in their peak).
    with rows_file.open("rb") as rows:
        head = rows.readline() + rows.readline()
        start = rows.tell()
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as out:
            out.write(head)
            written = len(head)
            while written < mib * 2**20:
                block = rows.read(min(8 << 20, mib * 2**20 - written))
                if not block:
                    rows.seek(start)
                    continue
                if written + len(block) >= mib * 2**20:
                    block += rows.readline()  # whole rows: the last one ends with its line end
                out.write(block)
                written += len(block)
    partial.replace(path)
    marker.write_text(str(mib))
    print(f"generated {path.relative_to(harness.ROOT)} ({path.stat().st_size / 2**20:.0f} MiB)", flush=True)


def paced(chunks: Iterator[bytes], rate: float) -> Iterator[bytes]:
    """``chunks``, each taking at least its size ÷ ``rate`` seconds (0: as fast as they come).

    A link, not this host's CPU: time lost while the other end was not reading is not made up later.
    """
    for chunk in chunks:
        started = time.perf_counter()
        yield chunk
        if rate:
            time.sleep(max(0.0, len(chunk) / rate - (time.perf_counter() - started)))


def serve_null_s3(rate: float) -> None:
    """S3's world process: the multipart calls answered as S3 does, each body read and counted, nothing kept.

    moto keeps every object and spends about a CPU-second per 100 MB doing it, on the same two vCPUs as
    the measured process and the vendor: a bench of overlap would measure moto's CPU instead. A real S3
    costs the function nothing but the sending.
    """
    import threading
    import uuid
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = {"bytes": 0}

    class NullS3(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _drain(self) -> None:
            left = int(self.headers.get("Content-Length") or 0)

            def body() -> Iterator[bytes]:
                nonlocal left
                while left:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        return
                    left -= len(chunk)
                    yield chunk

            for chunk in paced(body(), rate):
                received["bytes"] += len(chunk)

        def do_POST(self) -> None:
            self._drain()
            if "uploads" in self.path.split("?", 1)[-1].split("&"):
                body = (f"<InitiateMultipartUploadResult><UploadId>{uuid.uuid4().hex}</UploadId>"
                        "</InitiateMultipartUploadResult>").encode()
            else:
                body = b"<CompleteMultipartUploadResult><ETag>\"e-1\"</ETag></CompleteMultipartUploadResult>"
            self._answer(200, body, {"Content-Type": "application/xml"})

        def do_PUT(self) -> None:
            self._drain()
            self._answer(200, headers={"ETag": f'"{uuid.uuid4().hex}"'})

        def do_DELETE(self) -> None:
            self._drain()
            self._answer(204)

    front = ThreadingHTTPServer(("127.0.0.1", 0), NullS3)
    front.daemon_threads = True
    threading.Thread(target=front.serve_forever, daemon=True).start()
    print(json.dumps({"s3": f"http://127.0.0.1:{front.server_address[1]}"}), flush=True)
    while True:
        time.sleep(3600)


def serve_vendor(source: Path, rate: float) -> None:
    """The vendor's world process: the Particle simulator whose signed link serves ``source``."""
    whole = harness.file_chunks
    harness.file_chunks = lambda path, size=1 << 20: paced(whole(path, size), rate)
    print(json.dumps(bench_particle.serve(source)), flush=True)
    while True:
        time.sleep(3600)


# The measured variants.


def download(world: dict[str, Any], source: Path, scratch: Path, *, window: int | None = None
             ) -> Callable[[], dict[str, Any]]:
    from report_exporter.vendors.particle.adapter import ParticleAdapter

    if window is not None:
        from report_exporter.aws import s3

        s3.UPLOAD_WINDOW = window
    work = harness.prepare_download(world, bench_particle.plan(world), ParticleAdapter)

    def run() -> dict[str, Any]:
        result = work()
        (raw,) = result["raw"]["objects"]
        return {"bytes": result["bytes"], "key": raw["key"], "sha256": raw["sha256"]}

    return run


def plain_download(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    """The signed link (asked for as the adapter does), streamed with httpx and thrown away."""
    import httpx
    from pydantic import SecretStr

    from report_exporter.adapters.http_client import build_client
    from report_exporter.clock import SYSTEM
    from report_exporter.vendors.particle.adapter import ParticleAdapter

    plan = bench_particle.plan(world)
    credentials = {k: SecretStr(v) for k, v in world["credentials"].items()}
    adapter = ParticleAdapter(plan.export, build_client(plan.export.resolved_base_url()), credentials, SYSTEM)

    def run() -> dict[str, Any]:
        url = adapter._current_link(world["report_id"])
        size = 0
        with httpx.Client(timeout=60) as client, client.stream("GET", url) as response:
            response.raise_for_status()
            for chunk in response.iter_raw():
                size += len(chunk)
        return {"bytes": size}

    return run


def plain_upload(world: dict[str, Any], source: Path, scratch: Path) -> Callable[[], dict[str, Any]]:
    """The file from disk into one S3 multipart upload, 8 MiB parts one after the other (no overlap)."""
    from report_exporter.aws import clients

    s3 = clients.s3()
    key = "raw/bench/plain-upload.csv"

    def run() -> dict[str, Any]:
        upload = s3.create_multipart_upload(Bucket=harness.RAW_BUCKET, Key=key, ContentType="text/csv",
                                            ServerSideEncryption="AES256")["UploadId"]
        parts = []
        size = 0
        with source.open("rb") as data:
            while body := data.read(PART):
                size += len(body)
                number = len(parts) + 1
                etag = s3.upload_part(Bucket=harness.RAW_BUCKET, Key=key, UploadId=upload, PartNumber=number,
                                      Body=body)["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(Bucket=harness.RAW_BUCKET, Key=key, UploadId=upload,
                                     MultipartUpload={"Parts": parts})
        return {"bytes": size, "key": key}

    return run


VENDOR = harness.Vendor(
    name="download",
    title="DownloadReport against a plain download and a plain upload",
    script=str(Path(__file__).resolve()),
    suffix=".csv",
    variants={"download": "DownloadReport (Particle adapter -> S3 multipart, upload overlapped)",
              "download-serial": "DownloadReport, each part uploaded in the download loop (as before)",
              "plain-download": "plain download (httpx stream of the same link, discarded)",
              "plain-upload": "plain upload (the file from disk, 8 MiB parts one after the other)"},
    generate=lambda path, rows: None,
    serve=lambda source: {},
    prepare={"download": download,
             "download-serial": lambda world, source, scratch: download(world, source, scratch, window=0),
             "plain-download": plain_download, "plain-upload": plain_upload},
    check_column="",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of the report in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="rounds; the table shows medians (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first (default 1)")
    parser.add_argument("--link-mbps", type=float, default=LINK_MBPS,
                        help=f"the vendor's and S3's link, each, in Mbit/s (default {LINK_MBPS:.0f}; 0: unpaced, "
                             "as fast as this host's CPUs serve it)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--world", choices=["s3", "vendor"], help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    rate = args.link_mbps * 1e6 / 8
    if args.world == "s3":
        serve_null_s3(rate)
        return
    if args.world == "vendor":
        serve_vendor(args.source, rate)
        return
    if args.measure:
        harness.measured_main(VENDOR, args.measure, args.source, args.scratch)
        return

    source = harness.DATA / f"particle_{args.mib}mib.csv"
    generate(source, args.mib)
    scratch = harness.DATA / "scratch" / VENDOR.name
    scratch.mkdir(parents=True, exist_ok=True)
    worlds = [subprocess.Popen([sys.executable, VENDOR.script, "--world", role, "--source", str(source),
                                "--link-mbps", str(args.link_mbps)],
                               stdout=subprocess.PIPE, cwd=harness.ROOT) for role in ("s3", "vendor")]
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        world: dict[str, Any] = {}
        for proc in worlds:
            assert proc.stdout is not None
            world.update(json.loads(proc.stdout.readline()))
        for run in range(-args.warmup, args.runs):
            label = f"run {run + 1}/{args.runs}" if run >= 0 else "warm-up"
            for variant in VENDOR.variants:
                result = harness.run_measured(VENDOR, variant, world, source, scratch)
                if result["bytes"] != source.stat().st_size:
                    raise SystemExit(f"{variant} moved {result['bytes']} bytes of {source.stat().st_size}")
                if run >= 0:
                    results.setdefault(variant, []).append(result)
                print(f"{label:7s} {variant:14s} wall {result['wall']:6.2f} s  cpu {result['cpu']:6.2f} s"
                      f"  peak {result['rss_mib']:5.0f} MiB (post-import {result['import_rss_mib']:3.0f} MiB)",
                      flush=True)
    finally:
        for proc in worlds:
            proc.terminate()
            proc.wait(timeout=30)
    report(results, source, args.link_mbps)


def report(results: dict[str, list[dict[str, Any]]], source: Path, link_mbps: float) -> None:
    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in results[variant])

    rounds = min(len(r) for r in results.values())
    print(f"\n{VENDOR.title}: {source.stat().st_size / 2**20:.0f} MiB Particle CSV, {os.cpu_count()} CPUs; "
          f"links {f'{link_mbps:.0f} Mbit/s each' if link_mbps else 'unpaced'}; "
          f"medians of {rounds} interleaved round(s), whole processes\n")
    print("| variant | wall s | CPU s | peak MiB | post-import MiB | peak - post-import MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for variant, title in VENDOR.variants.items():
        above = statistics.median(r["rss_mib"] - r["import_rss_mib"] for r in results[variant])
        print(f"| {title} | {median(variant, 'wall'):.2f} | {median(variant, 'cpu'):.2f} "
              f"| {median(variant, 'rss_mib'):.0f} | {median(variant, 'import_rss_mib'):.0f} | {above:.0f} |")
    ratio = statistics.median(
        results["download"][i]["wall"]
        / max(results["plain-download"][i]["wall"], results["plain-upload"][i]["wall"]) for i in range(rounds))
    above = statistics.median(r["rss_mib"] - r["import_rss_mib"] for r in results["download"])

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    print(f"\nP2 download ({source.stat().st_size / 2**20:.0f} MiB report; medians of per-round figures):\n")
    print("| goal | figure | verdict |")
    print("| --- | --- | --- |")
    print(f"| DownloadReport wall ÷ max(plain download, plain upload) | {ratio:.2f} "
          f"| ≤ {WALL_GOAL}: {verdict(ratio <= WALL_GOAL)} |")
    print(f"| DownloadReport peak above its post-import RSS | {above:.0f} MiB "
          f"| ≤ {PEAK_GOAL_MIB} MiB: {verdict(above <= PEAK_GOAL_MIB)} |")
    if "download-serial" in results:
        serial = statistics.median(results["download"][i]["wall"] / results["download-serial"][i]["wall"]
                                   for i in range(rounds))
        print(f"| (overlapped ÷ serial DownloadReport wall) | {serial:.2f} | reported |")


if __name__ == "__main__":
    main()
