"""What every curated table shares: ``base`` (Dataset, ReadContext, lineage, Glue types), ``csvread`` and
``values`` (the CSV reader and its value rules), ``ndjson``; the registry of tables is ``datasets.registry``.

This file imports nothing, so a vendor's dataset module can import these modules without a cycle.
"""
