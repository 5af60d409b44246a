"""A name imported only for type checkers: Prefect's evaluation of the string annotations fails, so it keeps them
all as strings, and pydantic resolves only builtins (and `typing as t`) among them.  (Without
validate_parameters=False, the @flow decorator itself fails on the undefined name.)"""
from __future__ import annotations

import typing as t
from typing import TYPE_CHECKING, List, Optional

from prefect import flow

if TYPE_CHECKING:
    from logging import Logger


@flow(validate_parameters=False)
def checked(logger: Logger = None, a: int = 1, b: List[int] = [], c: Optional[str] = None, d: list[str] = [],
            e: t.List[int] = [], f: dict[str, float] = {}):
    pass


@flow
def unaffected(a: int = 1, b: List[int] = []):
    pass
