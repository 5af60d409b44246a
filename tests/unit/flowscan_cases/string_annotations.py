"""Quoted annotations without the __future__ import, and forward references nested inside annotations."""
from enum import Enum
from typing import List, Optional

from prefect import flow


class Tone(Enum):
    DARK = "dark"
    LIGHT = "light"


Alias = Optional[List[int]]


@flow
def quoted(a: "int", b: "List[str]" = [], c: "Tone" = Tone.DARK, d: "Optional[Tone]" = None,
           nested_builtin: List["int"] = [], nested_local: List["Tone"] = [], e: Alias = None, f: "Alias" = None):
    pass
