"""Rendering: plans, reports and status as text or markdown (JSON is the values' own to_json); no I/O here.

Takes a Plan or a Report; gives the string a terminal, a log or a pull-request comment shows.
"""
