"""Rendering plans, reports and status as text, markdown or JSON (no I/O here)."""
