"""Parameter kinds (positional-only, keyword-only, *args, **kwargs) and defaults of every literal kind."""
import datetime as dt
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import prefect

REGION = "emea"
LIMIT = 10
LIMIT = 20  # the default takes the value the name has when the `def` runs
TIMEOUT = 60 * 60
FILTERS = {"channel": "online", "min": -1.5}


@prefect.flow
def kinds(a, b: int, /, c: str = "c", *args, d: float = 0.5, e, **kwargs):
    pass


@prefect.flow()
def only_varargs(*items: int, **options: str):
    pass


@prefect.flow(name="literal-defaults")
def literal_defaults(
    s: str = "text", empty: str = "", i: int = 42, neg: int = -7, f: float = 2.5, tiny: float = 1e-3,
    big: float = 1e10, t: bool = True, no: bool = False, none=None, b: bytes = b"raw", joined: str = "a" "b",
    lst: list = [1, "two", 3.0, None, True], tup: tuple = (1, (2, 3)), st: set = {3, 1, 2},
    fs: frozenset = frozenset({5}),
    dct: dict = {"k": [1, 2], "nested": {"z": 1, "a": 2}, "n": None}, int_keys: dict = {1: "one", 2: "two"},
    empty_list: list = [], empty_dict: dict = {}, empty_set: set = set(), empty_tuple: tuple = (),
    mismatched: int = 1.5, truthy: bool = 1, fstr: str = f"plain", arith: int = 2 ** 10 + 3 * 4, hexa: int = 0x1F,
):
    pass


@prefect.flow
def constant_defaults(region: str = REGION, limit: int = LIMIT, timeout: int = TIMEOUT, filters: dict = FILTERS,
                      both: list = [REGION, LIMIT]):
    pass


@prefect.flow
def constructed_defaults(
    when: dt.datetime = dt.datetime(2024, 1, 2, 3, 4, 5), day: dt.date = dt.date(2024, 2, 29),
    at: dt.time = dt.time(12, 30), gap: dt.timedelta = dt.timedelta(days=1, hours=2),
    short: dt.timedelta = dt.timedelta(seconds=90), long: dt.timedelta = dt.timedelta(days=400, microseconds=1500),
    negative: dt.timedelta = dt.timedelta(hours=-1), amount: Decimal = Decimal("12.50"),
    where: Path = Path("data/in.csv"), id: UUID = UUID("12345678-1234-5678-1234-567812345678"),
    made_list: list = list((1, 2)), made_dict: dict = dict(a=1), as_float: float = float("1.25"),
):
    pass


@prefect.flow
def required_by_ellipsis(x: int = ..., y: int = 1):
    pass


def helper(x: int) -> int:
    return x


LATER = "defined after the flows"
