"""Local execution: the real state machine in moto, vendor simulators, the CLI. Not shipped to Lambda."""

import os

# jsii prints a large end-of-life banner for Node 20 on every CDK import; it is informational only.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
