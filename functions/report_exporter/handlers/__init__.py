"""Thin Lambda entry points, one per state: parse, add log keys, call one logic function, dump."""
