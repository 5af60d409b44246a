"""`from typing import *` (names of standard modules are known without importing) and an alias to a string."""
from typing import *

from prefect import flow

Numbers = "List[int]"  # a name for a string: Prefect evaluates the string in the module


@flow
def starred(a: List[int], b: Optional[Dict[str, Any]] = None, c: Numbers = [], d: Tuple[int, ...] = ()):
    pass
