"""Business steps: take models and injected ports, return models; no event shapes, no boto3."""
