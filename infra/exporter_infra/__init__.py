"""CDK app for the report exporter: a stateful stack (data, ledger, query side) and a stateless one."""

import os

# jsii prints a large end-of-life banner for Node 20 on every import; it is informational only.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
