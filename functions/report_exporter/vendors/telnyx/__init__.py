"""Telnyx usage reports (synchronous, paginated JSON, kept as JSON lines).

``facts`` (what the vendor documents, with sources), ``export`` (the config model), ``adapter`` (the HTTP
client), ``dataset`` (schema and reader of its curated tables), ``focus`` (its FOCUS charges) and
``simulator`` (its API on loopback, for the local runner and the tests; not shipped to Lambda).
"""
