"""Importing this file writes a marker next to it: a scan must not import it (generate_expected.py checks that
importing it really does write the marker, then removes it)."""
from pathlib import Path

from prefect import flow

Path(__file__).with_name("writes_on_import.marker").write_text("this file was imported\n")


@flow
def side_effect(when: str = "import time"):
    pass
