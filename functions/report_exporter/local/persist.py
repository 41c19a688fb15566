"""A local run's AWS state kept on disk, so that a rerun with the same ``--out`` goes on where a killed one stopped.

``report-exporter run`` runs the stacks in an in-memory AWS (moto). Without this module a run that is
killed (Ctrl-C twice, a closed laptop, an OOM kill) takes its ledger with it, and the rerun requests a
second vendor report while the first stays open against the account's cap. With it:

* after every write to the ledger table, the table is written to ``<out>/.state/ledger.json`` (a
  temporary file, then renamed: a kill leaves the previous snapshot or the new one, never half of one);
* every object stored in the raw and curated buckets is mirrored at once to ``<out>/<key>`` (the files a
  run leaves under ``--out`` anyway), and removed there when the bucket deletes it;
* the next run with the same ``--out`` loads the ledger back, and the raw objects its open runs refer
  to, before it starts; the runner then resumes the execution that held the open report (same name, so
  the ledger sees that execution retrying: it adopts the report, keeps its slot, reuses what was kept).

Not kept: a multipart upload in progress (a download cut by the kill starts again from the first byte;
in AWS, where nothing kills the service, a retried DownloadReport goes on from the last kept part), and
the credentials (pass ``--secrets`` again). A lock on ``<out>/.state/lock`` keeps two runs from sharing
one ``--out``. ``--fresh`` drops the saved ledger and starts over.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from report_exporter.errors import ExporterError
from report_exporter.models.manifest import manifest_key

_LEDGER_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
_OBJECT_WRITES = frozenset({"PutObject", "CompleteMultipartUpload", "CopyObject"})
_OBJECT_DELETES = frozenset({"DeleteObject", "DeleteObjects"})
_STAGING = "curated/_staging/"
# Statuses whose raw objects a resumed run still needs (a report downloaded but not yet published).
_OPEN = frozenset({"REQUESTING", "PENDING", "READY", "DOWNLOADING", "DOWNLOADED", "PUBLISHING"})


class LocalState:
    """The ledger and objects of local runs under ``root`` (the CLI's ``--out``). Use as a context manager.

    Args:
        root: The run's output folder; the state lives in ``root/.state``, the objects at ``root/<key>``.
        fresh: Drop the saved ledger: the run starts over (the files under ``root`` stay).
    """

    def __init__(self, root: Path, *, fresh: bool = False) -> None:
        self.root = root
        self.dir = root / ".state"
        self.fresh = fresh
        self.mirrored: set[str] = set()
        """Keys written under ``root`` by this run."""
        self._lock_file: IO[str] | None = None
        self._mutex = threading.Lock()
        self._client: dict[str, Any] = {}
        self._table = ""
        self._buckets: dict[str, str] = {}

    @property
    def ledger_file(self) -> Path:
        return self.dir / "ledger.json"

    def __enter__(self) -> LocalState:
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = (self.dir / "lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ExporterError(
                f"another report-exporter run is using {self.root} (its state is in {self.dir}); wait for it to "
                "end, or pass another --out"
            ) from None
        self._lock_file = lock
        if self.fresh:
            self.ledger_file.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # Loading what an earlier run left.
    def saved_items(self) -> list[dict[str, Any]]:
        """The ledger items (DynamoDB JSON) the last run saved; none after ``fresh`` or on a first run."""
        if not self.ledger_file.exists():
            return []
        try:
            items = json.loads(self.ledger_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ExporterError(f"{self.ledger_file} is not the JSON a run saves ({exc}); rerun with --fresh") from None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ExporterError(f"{self.ledger_file} is not the list of ledger items a run saves; rerun with --fresh")
        return items

    def restore(self, *, table: str, buckets: dict[str, str]) -> set[str]:
        """Load the saved ledger into ``table`` and the raw objects its open runs need into the buckets.

        Returns:
            The execution names the saved ledger mentions (a new execution must not reuse one by accident:
            the ledger would take it for the old one).
        """
        self._table, self._buckets = table, dict(buckets)
        items = self.saved_items()
        dynamo = self._aws("dynamodb")
        for item in items:
            dynamo.put_item(TableName=table, Item=item)
        for key in self._open_raw_keys(items):
            path = self.root / key
            if not path.is_file():
                raise ExporterError(
                    f"the saved ledger refers to raw object {key}, which is not under {self.root} any more; "
                    "rerun with --fresh to request the report again"
                )
            self._aws("s3").upload_file(str(path), buckets["raw"], key)
            manifest = self.root / manifest_key(key)
            if manifest.is_file():  # what the raw object answers, for WriteParquet (models/manifest.py)
                self._aws("s3").upload_file(str(manifest), buckets["raw"], manifest_key(key))
        return set(re.findall(r":execution:[^:\"]+:([A-Za-z0-9_-]+)", json.dumps(items)))

    @staticmethod
    def _open_raw_keys(items: list[dict[str, Any]]) -> Iterator[str]:
        from boto3.dynamodb.types import TypeDeserializer

        plain = TypeDeserializer()
        for item in items:
            if item.get("status", {}).get("S") not in _OPEN or "raw" not in item:
                continue
            for raw in plain.deserialize(item["raw"]) or ():
                if isinstance(raw, dict) and isinstance(raw.get("key"), str):
                    yield raw["key"]

    # Saving as the run goes.
    def attach(self, events: Any) -> None:
        """Register on a botocore event system (the handlers' session): save after each ledger or object write."""
        events.register("before-parameter-build.s3", self._remember_key)
        events.register("after-call.dynamodb", self._after_ledger_write)
        events.register("after-call.s3", self._after_object_write)

    @staticmethod
    def _remember_key(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["local_state"] = {"bucket": params.get("Bucket"), "key": params.get("Key"),
                                  "keys": [o.get("Key") for o in (params.get("Delete") or {}).get("Objects", [])]}

    def _after_ledger_write(self, model: Any, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.name not in _LEDGER_WRITES or not self._table:
            return
        with self._mutex:
            items: list[dict[str, Any]] = []
            for page in self._aws("dynamodb").get_paginator("scan").paginate(TableName=self._table):
                items += page.get("Items", [])
            _write_atomically(self.ledger_file, json.dumps(items, sort_keys=True).encode())

    def _after_object_write(self, model: Any, context: dict[str, Any], parsed: dict[str, Any], **_: Any) -> None:
        asked = context.get("local_state") or {}
        bucket = asked.get("bucket")
        if bucket not in self._buckets.values() or (parsed.get("Error") or {}).get("Code"):
            return
        key = asked.get("key")
        if model.name in _OBJECT_WRITES and isinstance(key, str) and isinstance(bucket, str):
            self._mirror(bucket, key)
        elif model.name in _OBJECT_DELETES:
            for key in [asked.get("key"), *asked.get("keys", [])]:
                if isinstance(key, str) and not key.startswith(_STAGING):
                    (self.root / key).unlink(missing_ok=True)
                    self.mirrored.discard(key)

    def _mirror(self, bucket: str, key: str) -> None:
        if key.startswith(_STAGING) or ".." in Path(key).parts:
            return
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as out:
                # One GET read in chunks (moto answers it from the object's file: local/moto_s3.py), rather than a
                # managed download's ten threads of ranged GETs, each holding its chunks.
                body = self._aws("s3").get_object(Bucket=bucket, Key=key)["Body"]
                for chunk in body.iter_chunks(1 << 20):
                    out.write(chunk)
            Path(temporary).replace(target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        with self._mutex:
            self.mirrored.add(key)

    def _aws(self, service: str) -> Any:
        """A client outside the handlers' session: its calls pass no sandbox checkpoint and no hook of ours."""
        if service not in self._client:
            import boto3

            self._client[service] = boto3.session.Session().client(service, region_name=os.environ.get("AWS_REGION"))
        return self._client[service]


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
