"""Importing this file raises, unless generate_expected.py (which must import it) says otherwise: a scan must
not import it."""
import os

from prefect import flow


@flow
def survives(x: int = 1, y: str = "why"):
    pass


if os.environ.get("FLOWSCAN_GENERATOR") != "1":
    raise RuntimeError("raises_on_import.py was imported")
