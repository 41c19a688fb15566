"""Typed contracts: export configuration and the payloads between states."""
