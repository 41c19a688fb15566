"""Particle data-operations reports (asynchronous: request, poll, download a pre-signed CSV).

``facts`` (what the vendor documents, with sources), ``export`` (the config model), ``adapter`` (the HTTP
client), ``dataset`` (schema and reader of its curated tables), ``focus`` (its FOCUS charges) and
``simulator`` (its API on loopback, for the local runner and the tests; not shipped to Lambda).
"""
