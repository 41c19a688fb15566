"""Vendor simulators: each serves a vendor's documented API on loopback for the demo and the tests."""
