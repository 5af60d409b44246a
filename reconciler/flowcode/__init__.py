"""Flow code: reads a flow script's syntax tree (never imports it) to build and check a manifest's generated part.

Takes a manifest and its entrypoint; gives the flow name and parameter schema, the differences, or a new manifest.
"""
