"""Raw JSON-lines records for synchronous JSON vendors: the vendor's body, verbatim, in a request envelope.

A vendor body alone often does not say what it answers (a Telnyx page has no dates, a Senet summary
no Application EUI). Each line is therefore ``{"request": {...}, "response": <body>}``, where ``request``
holds the parameters we sent and ``<body>`` is the vendor's bytes as received, so the raw file stays the
source of truth and a replay needs nothing but the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def one_line(body: bytes) -> bytes:
    """The JSON body on one line: line breaks are whitespace outside strings and never raw inside them."""
    return body.replace(b"\r", b" ").replace(b"\n", b" ").strip()


def envelope_line(request: Mapping[str, Any], body: bytes) -> bytes:
    """One JSON-lines record: ``{"request": request, "response": body}`` ending in a newline."""
    head = json.dumps(dict(request), separators=(",", ":"), sort_keys=True).encode()
    return b'{"request":' + head + b',"response":' + one_line(body) + b"}\n"
