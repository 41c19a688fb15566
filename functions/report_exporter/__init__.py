"""Serverless exporter of vendor usage reports into S3, Parquet and Athena."""

__version__ = "0.1.0"
