"""Local execution: the real state machine in moto, vendor simulators, the CLI. Not shipped to Lambda."""
