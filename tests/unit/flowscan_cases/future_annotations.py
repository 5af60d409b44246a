"""`from __future__ import annotations`: every annotation is a string, evaluated when Prefect reads the signature."""
from __future__ import annotations

import datetime
from enum import Enum
from typing import Dict, List, Optional

from pydantic import BaseModel
from prefect import flow


class Shape(Enum):
    SQUARE = "square"
    CIRCLE = "circle"


class Box(BaseModel):
    shape: Shape
    size: Optional[float] = None
    labels: List[str] = []


class Later(BaseModel):
    v: int = 1


@flow
def future(a: int, b: list[str], c: Optional[Box] = None, d: Dict[str, Shape] = {}, e: int | None = None,
           f: datetime.date = None, g: Later = None, h: "int" = 0):
    pass
