"""Manifests: reads the `*-deployment.yaml` files and `reconcile.yaml` of a directory.

Takes files; gives validated Manifest values with the file:line of every value, plus the schedule and block rules they obey.
"""
