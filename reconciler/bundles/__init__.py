"""Bundles: a deployment's code on disk and at its storage location.

Takes desired deployments and their storage blocks; gives hashed bundles, the markers found, the uploads to make, and makes them.
"""
