"""pydantic 2's JSON Schema vocabulary, as Prefect 2.20 writes it: the types it knows, Field constraints, key order.

Plain data keyed by qualified name ("typing.List", "pydantic.SecretStr"); nothing here reads a flow file.
"""
from __future__ import annotations

from typing import Any, Optional

REF = "#/definitions/"
DECIMAL = {"anyOf": [{"type": "number"}, {"pattern": r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$", "type": "string"}]}
_S = lambda fmt: {"format": fmt, "type": "string"}  # noqa: E731 - a tiny constructor
SIMPLE: dict[str, dict[str, Any]] = {
    "builtins.str": {"type": "string"}, "builtins.int": {"type": "integer"}, "builtins.float": {"type": "number"},
    "builtins.bool": {"type": "boolean"}, "builtins.bytes": _S("binary"), "builtins.complex": {"type": "string"},
    "builtins.None": {"type": "null"}, "builtins.object": {}, "builtins.type": {}, "typing.Any": {},
    "typing.Type": {}, "typing.Callable": {}, "datetime.datetime": _S("date-time"), "datetime.date": _S("date"),
    "datetime.time": _S("time"), "datetime.timedelta": _S("duration"), "uuid.UUID": _S("uuid"),
    "pathlib.Path": _S("path"), "pathlib.PurePath": _S("path"), "pathlib.PosixPath": _S("path"),
    "decimal.Decimal": DECIMAL, "pendulum.DateTime": _S("date-time"), "pendulum.Date": _S("date"),
    "pendulum.Duration": _S("duration"), "pydantic.SecretStr": {**_S("password"), "writeOnly": True},
    "pydantic.HttpUrl": {**_S("uri"), "maxLength": 2083, "minLength": 1},
    "pydantic.PositiveInt": {"exclusiveMinimum": 0, "type": "integer"},
    "pydantic.NonNegativeInt": {"minimum": 0, "type": "integer"},
}
LISTS = {"builtins.list", "typing.List", "typing.Sequence", "typing.MutableSequence", "typing.Iterable"}
SETS = {"builtins.set", "builtins.frozenset", "typing.Set", "typing.FrozenSet", "typing.AbstractSet",
        "typing.MutableSet"}
DICTS = {"builtins.dict", "typing.Dict", "typing.Mapping", "typing.MutableMapping"}
TUPLES = {"builtins.tuple", "typing.Tuple"}
BARE = {**{q: {"items": {}, "type": "array"} for q in LISTS | TUPLES},
        **{q: {"items": {}, "type": "array", "uniqueItems": True} for q in SETS},
        **{q: {"additionalProperties": True, "type": "object"} for q in DICTS}}
HARMLESS_CONFIG = {"arbitrary_types_allowed", "frozen", "validate_assignment", "use_enum_values", "populate_by_name",
                   "str_strip_whitespace", "from_attributes", "protected_namespaces", "validate_default",
                   "allow_population_by_field_name", "orm_mode", "allow_mutation", "underscore_attrs_are_private"}
CONSTRAINTS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum",
               "multiple_of": "multipleOf", "pattern": "pattern"}
LENGTHS = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems"),
           "object": ("minProperties", "maxProperties")}
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array"}


def sort(value: Any, parent: Optional[str] = None) -> Any:
    """pydantic's GenerateJsonSchema.sort: keys sorted, except under 'properties' and 'default'."""
    if isinstance(value, dict):
        keys = value if parent in ("properties", "default") else sorted(value)
        return {k: sort(value[k], k) for k in keys}
    if isinstance(value, list):
        return [sort(v, parent) for v in value]
    return value
