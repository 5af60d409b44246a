"""Things that start a run: the webhook controller (serve), the git hook, watch mode, the GitHub Action.

Each calls the same engine as `reconcile apply`; none has reconciliation logic of its own.
"""
