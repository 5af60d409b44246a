"""The engine: desired → live → diff → plan → apply → report, joined in `run`.

Takes a directory of manifests (or a saved plan) and a Prefect client; gives a Plan and, when applied, a Report.
"""
