"""Annotations imported from elsewhere: the scanner cannot know them without importing, and leaves them
unconstrained — here that is also what Prefect writes, as they are plain classes."""
import logging

import httpx

import case_helpers
from case_helpers import Plain
from prefect import flow


class LocalPlain:
    """A class of this file that is neither an Enum nor a model: Prefect writes no constraint for it."""


@flow
def imported(client: httpx.Client, logger: logging.Logger = None, helper: case_helpers.Plain = None,
             plain: Plain = None, local: LocalPlain = None, n: int = 3):
    pass
