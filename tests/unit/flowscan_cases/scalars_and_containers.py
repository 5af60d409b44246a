"""Builtin, typing and standard-library annotations, with and without defaults."""
import datetime
import decimal
import typing
import uuid
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple, Union

from prefect import flow


@flow
def scalars(text: str, count: int, ratio: float, flag: bool, nothing: None, blob: bytes, anything: Any,
            untyped, obj: object = None):
    pass


@flow
def bare_containers(a: list, b: dict, c: tuple, d: set, e: frozenset, f: List, g: Dict, h: Tuple, i: Set,
                    j: typing.Sequence, k: Mapping):
    pass


@flow
def typed_containers(a: List[int], b: Dict[str, float], c: Tuple[int, str], d: Set[str], e: list[str],
                     f: dict[str, list[int]], g: tuple[int, ...], h: set[bool], i: frozenset[int],
                     j: FrozenSet[str], k: Sequence[float], l: Mapping[str, Any], m: tuple[()] = (),
                     n: Tuple[Dict[str, List[int]], ...] = (), o: dict[int, str] = None, p: List[Any] = [],
                     q: Dict[str, Any] = {}, r: tuple[int] = (1,)):
    pass


@flow
def optionals_and_unions(a: Optional[int], b: Union[int, str], c: int | None, d: str | int | None,
                         e: Optional[Union[int, str]] = None, f: Union[None, float] = None,
                         g: Optional[List[str]] = None, h: Union[List[int], Sequence[int]] = (),
                         i: Optional[Any] = None, j: Union[bool, int] = True, k: Union[int] = 1,
                         l: Optional[Optional[int]] = None, m: None | dict[str, int] = None):
    pass


@flow
def literals(a: typing.Literal["x", "y"], b: typing.Literal[1, 2, 3] = 2, c: typing.Literal["only"] = "only",
             d: typing.Literal["a", 1, None] = None, e: Optional[typing.Literal["p", "q"]] = None,
             f: typing.Literal[True] = True, g: typing.Literal[-1, 0] = 0, h: typing.Literal["a", "a", "b"] = "a"):
    pass


@flow
def stdlib_types(when: datetime.datetime, day: date, at: time, gap: timedelta, id: uuid.UUID, where: Path,
                 amount: decimal.Decimal, maybe_amount: Optional[decimal.Decimal] = None,
                 days: list[datetime.date] = [], ids: Optional[uuid.UUID] = None):
    pass
