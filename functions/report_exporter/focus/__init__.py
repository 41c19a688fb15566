"""One view across vendors: every vendor's curated usage as FOCUS charges (README "One view across vendors")."""

from __future__ import annotations

from report_exporter.focus.columns import COLUMNS, FOCUS_VERSION, Column
from report_exporter.focus.queries import QUERIES
from report_exporter.focus.view import VIEW_NAME, view_sql

__all__ = ["COLUMNS", "FOCUS_VERSION", "QUERIES", "VIEW_NAME", "Column", "view_sql"]
