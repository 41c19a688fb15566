"""The HTTP plumbing every vendor adapter shares (auth, retries, streaming, ranged files, record counts).

The registry of adapters is ``adapters.registry``; each vendor's adapter is ``vendors/<vendor>/adapter.py``.
This file imports nothing, so a vendor module can import these modules without a cycle.
"""
