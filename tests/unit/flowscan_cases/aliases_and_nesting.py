"""Type aliases, unions flattened through aliases, nested containers of models, Field() in models."""
import enum
import collections.abc
import typing
from typing import Dict, List, Optional, Union
import typing_extensions
from pydantic import BaseModel, ConfigDict, Field
from prefect import flow

OptInt = Optional[int]
Numbers = List[int]
Both = Union[int, str]


class Flag(enum.IntEnum):
    A = enum.auto()
    B = enum.auto()


class Doc(enum.Enum):
    """An enumeration."""
    X = "x"


class Empty(BaseModel):
    pass


class Item(BaseModel):
    model_config = ConfigDict(extra="allow")

    req_opt: Optional[int]
    described: Optional[str] = Field(None, description="may be absent")
    must: int = Field(..., description="needed")
    kind: typing_extensions.Literal["a", "b"] = "a"
    by_key: Dict[str, Empty] = {}
    either: Union[Empty, int] = 1
    many: Optional[List[Empty]] = None
    aliased: int = Field(2, alias="theAlias")
    doc: Doc = Doc.X
    flag: Flag = Flag.B


@flow
def nesting(a: Union[OptInt, str] = None, b: Numbers = [], c: Optional[Both] = None,
            d: collections.abc.Sequence[int] = (), e: typing.Optional[typing.List[typing.Dict[str, typing.Any]]] = None,
            f: Dict[str, Doc] = {"k": Doc.X}, g: typing_extensions.Annotated[int, Field(gt=0, multiple_of=2)] = 2,
            items: List[Item] = [], empty: Empty = None,
            json: str = "j", schema: int = 1, h: Union[int, OptInt] = 1, i: Union[str, None, int, None] = None):
    """Doc.

    Args:
        items: the items
    """
