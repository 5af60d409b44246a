"""Enum and pydantic model annotations defined in the flow's own file (→ `definitions`)."""
import enum
from enum import Enum, IntEnum, auto
from typing import Annotated, Dict, List, Literal, Optional

import pydantic
from pydantic import BaseModel, Field
from prefect import flow as make_flow


class Color(str, Enum):
    """Colours a report can use."""

    RED = "red"
    GREEN = "green"
    CRIMSON = "red"  # an alias, not a member


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Mixed(Enum):
    ONE = 1
    TWO = "two"
    PAIR = (1, 2)


class Counted(enum.Enum):
    FIRST = auto()
    SECOND = auto()
    TENTH = 10
    ELEVENTH = auto()


class Point(BaseModel):
    x: int
    y: int = 0


class Window(pydantic.BaseModel):
    """A time window.

    Both ends inclusive.
    """

    start_day: str
    days: int = Field(7, ge=1, le=366, description="How many days")
    color: Color = Color.GREEN
    maybe_color: Optional[Color] = None
    level: Level = Level.LOW
    points: List[Point] = []
    origin: Optional[Point] = None
    tags: Dict[str, str] = {}
    mode: Literal["fast", "slow"] = "fast"
    renamed: int = Field(default=1, alias="renamedField", title="Custom Title")
    label: Annotated[str, Field(min_length=2, max_length=10)] = "ab"
    made: List[int] = Field(default_factory=list)


class Extended(Window):
    extra_field: float = 1.5


class Strict(BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str


class Tree(BaseModel):
    value: int
    children: List["Tree"] = []


@make_flow(name="Enums and Models")
def enums(color: Color, level: Level = Level.HIGH, mixed: Mixed = Mixed.PAIR, counted: Counted = Counted.ELEVENTH,
          colors: List[Color] = [Color.RED], maybe: Optional[Color] = None, lit: Literal[Color.RED] = Color.RED):
    pass


@make_flow
def models(window: Window, point: Point = None, points: List[Point] = [], extended: Optional[Extended] = None,
           strict: Strict = None, tree: Tree = None, by_name: Dict[str, Point] = {}):
    pass


@make_flow
def model_used_once(only: Point):
    pass
