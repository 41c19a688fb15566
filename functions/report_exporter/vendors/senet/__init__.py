"""Senet usage (synchronous, per Application and month: a JSON summary and a CSV details file).

``facts`` (what the vendor documents, with sources), ``export`` (the config model), ``adapter`` (the HTTP
client), ``dataset`` (schema and reader of its curated tables), ``focus`` (its FOCUS charges) and
``simulator`` (its API on loopback, for the local runner and the tests; not shipped to Lambda).
"""
