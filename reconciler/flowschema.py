"""Pydantic 2's JSON Schema for annotations and defaults read from a syntax tree, as Prefect 2.20 writes it.

Nothing here imports or runs the flow file.  `Module` indexes its top-level
bindings and evaluates literal expressions (constants, enum members, a few
stdlib constructors, with a work budget: the file is untrusted); `Types` turns
annotations into schemas.  What cannot be known without running code raises
`Unknown`; the caller leaves that parameter unconstrained and warns.
"""
from __future__ import annotations

import ast
import builtins
import datetime as dt
import decimal
import functools
import importlib
import inspect
import pathlib
import re
import uuid
from dataclasses import dataclass
from typing import Any, Optional

from .errors import ReconcileError

REF = "#/definitions/"
DECIMAL = {"anyOf": [{"type": "number"}, {"pattern": r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$", "type": "string"}]}
BUILTINS = frozenset(dir(builtins))
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
ENUMS = {"enum.Enum", "enum.IntEnum", "enum.StrEnum"}
MIXINS = {"builtins.str": str, "enum.StrEnum": str, "builtins.int": int, "enum.IntEnum": int, "builtins.float": float}
HARMLESS_CONFIG = {"arbitrary_types_allowed", "frozen", "validate_assignment", "use_enum_values", "populate_by_name",
                   "str_strip_whitespace", "from_attributes", "protected_namespaces", "validate_default",
                   "allow_population_by_field_name", "orm_mode", "allow_mutation", "underscore_attrs_are_private"}
CANON = [("typing_extensions.", "typing."), ("collections.abc.", "typing."), ("pydantic.main.", "pydantic."),
         ("pydantic.types.", "pydantic."), ("pydantic.networks.", "pydantic."), ("pydantic.fields.", "pydantic."),
         ("pydantic.config.", "pydantic."), ("prefect.flows.", "prefect."), ("prefect.tasks.", "prefect."),
         ("pendulum.datetime.", "pendulum."), ("pendulum.date.", "pendulum.")]
CONSTRAINTS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum",
               "multiple_of": "multipleOf", "pattern": "pattern"}
LENGTHS = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems"),
           "object": ("minProperties", "maxProperties")}
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array"}
# Names pydantic finds for a string annotation Prefect could not evaluate in the module: it looks
# in Prefect's own module (prefect._internal.pydantic.v2_schema), where little more than these exist.
FALLBACK = {"t": "typing", "typing": "typing", "pendulum": "pendulum", "pydantic": "pydantic"}
CALLS = {"datetime.datetime": dt.datetime, "datetime.date": dt.date, "datetime.time": dt.time,
         "datetime.timedelta": dt.timedelta, "decimal.Decimal": decimal.Decimal, "pathlib.Path": pathlib.PurePosixPath,
         "pathlib.PurePath": pathlib.PurePosixPath, "uuid.UUID": uuid.UUID, "builtins.set": set,
         "builtins.frozenset": frozenset, "builtins.list": list, "builtins.tuple": tuple, "builtins.dict": dict,
         "builtins.float": float, "builtins.int": int, "builtins.str": str, "builtins.bool": bool}
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
        ast.Pow: lambda a, b: a ** b}
STAR_MODULES = {"typing", "datetime", "decimal", "enum", "pathlib", "uuid", "collections.abc"}
BUDGET = 200_000  # literal-evaluation steps per file: enough for any real file, bounded for a hostile one


class Unknown(Exception):
    """Cannot be known without running code; str() says what.  `prefect_too`: Prefect cannot either."""

    def __init__(self, what: str, prefect_too: bool = False) -> None:
        super().__init__(what)
        self.prefect_too = prefect_too


@dataclass(frozen=True)
class Member:
    """An enum member found in the file (its value is what JSON sees)."""
    enum: str
    name: str
    value: Any


def canon(qual: str) -> str:
    for old, new in CANON:
        if qual.startswith(old):
            return new + qual[len(old):]
    return qual


def text(node: ast.AST) -> str:
    return ast.unparse(node)


def args_of(node: ast.Subscript) -> list[ast.expr]:
    return list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]


def sort(value: Any, parent: Optional[str] = None) -> Any:
    """pydantic's GenerateJsonSchema.sort: keys sorted, except under 'properties' and 'default'."""
    if isinstance(value, dict):
        keys = value if parent in ("properties", "default") else sorted(value)
        return {k: sort(value[k], k) for k in keys}
    if isinstance(value, list):
        return [sort(v, parent) for v in value]
    return value


class Module:
    """Top-level bindings of a parsed file: name → [(line, kind, payload, bound_at_run_time)]."""

    def __init__(self, tree: ast.Module) -> None:
        self.bindings: dict[str, list[tuple[int, str, Any, bool]]] = {}
        self.future_annotations = False
        self.budget = BUDGET
        self._members: dict[int, dict[str, Any]] = {}
        self.stars: list[tuple[int, str, bool]] = []  # `from m import *`: known for standard modules only
        self._walk(tree.body, True)

    def _bind(self, name: str, line: int, kind: str, payload: Any, runtime: bool) -> None:
        self.bindings.setdefault(name, []).append((line, kind, payload, runtime))

    def _walk(self, body: list[ast.stmt], runtime: bool) -> None:
        for st in body:
            if isinstance(st, ast.ImportFrom):
                self.future_annotations |= st.module == "__future__" and any(a.name == "annotations" for a in st.names)
                if st.names[0].name == "*" and not st.level:
                    self.stars.append((st.lineno, st.module or "", runtime))
                for a in (a for a in st.names if a.name != "*"):
                    qual = canon("." * st.level + f"{st.module or ''}.{a.name}".lstrip("."))
                    self._bind(a.asname or a.name, st.lineno, "qual", qual, runtime)
            elif isinstance(st, ast.Import):
                for a in st.names:
                    self._bind(a.asname or a.name.partition(".")[0], st.lineno, "qual",
                               a.name if a.asname else a.name.partition(".")[0], runtime)
            elif isinstance(st, ast.ClassDef):
                self._bind(st.name, st.lineno, "class", st, runtime)
            elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._bind(st.name, st.lineno, "def", st, runtime)
            elif isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and st.value is not None:
                targets = st.targets if isinstance(st, ast.Assign) else [st.target]
                simple = len(targets) == 1 and isinstance(targets[0], ast.Name) and not isinstance(st, ast.AugAssign)
                for n in (n for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)):
                    self._bind(n.id, st.lineno, "value" if simple else "other", st.value, runtime)
            elif isinstance(st, ast.If):
                checking = text(st.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING", "t.TYPE_CHECKING")
                self._walk(st.body, runtime and not checking)
                self._walk(st.orelse, runtime)
            elif isinstance(st, (ast.Try, ast.With, ast.For, ast.While)):
                for part in ("body", "handlers", "orelse", "finalbody"):
                    for sub in getattr(st, part, []):
                        self._walk(sub.body if isinstance(sub, ast.ExceptHandler) else [sub], runtime)

    @property
    def opaque_star(self) -> bool:
        """A `from m import *` of a module we cannot list: any unknown name may come from it."""
        return any(runtime and module not in STAR_MODULES for _, module, runtime in self.stars)

    def binding(self, name: str, before: Optional[int] = None) -> Optional[tuple[str, Any]]:
        """The last run-time binding of `name` (before a line: for values read when a `def` runs)."""
        found = [b for b in self.bindings.get(name, ()) if b[3] and (before is None or b[0] < before)]
        if found:
            return found[-1][1], found[-1][2]
        for line, module, runtime in reversed(self.stars):
            if runtime and (before is None or line < before) and name in _exports(module):
                return "qual", canon(f"{module}.{name}")
        return ("qual", f"builtins.{name}") if name in BUILTINS else None

    def resolve(self, node: ast.AST, fallback: bool = False, before: Optional[int] = None) -> Optional[tuple[str, Any]]:
        """A Name/Attribute chain → ("qual", "typing.List") | ("class", ClassDef) | ("value", expr) | ... | None."""
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value, fallback, before)
            return ("qual", canon(f"{base[1]}.{node.attr}")) if base and base[0] == "qual" else None
        if not isinstance(node, ast.Name):
            return None
        if fallback:
            return ("qual", FALLBACK[node.id]) if node.id in FALLBACK else \
                ("qual", f"builtins.{node.id}") if node.id in BUILTINS else None
        return self.binding(node.id, before)

    def qual(self, node: ast.AST, fallback: bool = False) -> Optional[str]:
        found = self.resolve(node, fallback)
        return found[1] if found and found[0] == "qual" else None

    def literal(self, node: ast.AST, before: Optional[int] = None, depth: int = 0) -> Any:
        """The value of a literal expression (module constants bound before `before` included), or Unknown."""
        self.budget -= 1
        if depth > 40 or self.budget < 0:
            raise Unknown(text(node))
        lit = lambda n: self.literal(n, before, depth + 1)  # noqa: E731
        if isinstance(node, ast.Constant):
            return node.value
        try:
            if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and \
                    not any(isinstance(e, ast.Starred) for e in node.elts):
                return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](lit(e) for e in node.elts)
            if isinstance(node, ast.Dict) and None not in node.keys:
                return {lit(k): lit(v) for k, v in zip(node.keys, node.values)}
        except TypeError:  # an unhashable key or set element: Python would fail too
            raise Unknown(text(node)) from None
        if isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values):
            return "".join(v.value for v in node.values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = lit(node.operand)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _arith(node.op, lit(node.left), lit(node.right), node)
        if isinstance(node, ast.Name):
            found = self.binding(node.id, before)
            if found and found[0] == "value":
                line = min(b[0] for b in self.bindings[node.id] if b[2] is found[1])
                return self.literal(found[1], line, depth + 1)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            found = self.binding(node.value.id, before)
            if found and found[0] == "class":
                members = self.enum_members(found[1])
                if node.attr in members:
                    return Member(found[1].name, node.attr, members[node.attr])
        if isinstance(node, ast.Call) and not any(isinstance(a, ast.Starred) for a in node.args) \
                and all(k.arg for k in node.keywords) and (self.qual(node.func) or "") in CALLS:
            args = [lit(a) for a in node.args]
            kwargs = {k.arg: lit(k.value) for k in node.keywords}
            if not any(isinstance(v, Member) for v in [*args, *kwargs.values()]):
                try:
                    return CALLS[self.qual(node.func)](*args, **kwargs)
                except (ValueError, TypeError, ArithmeticError):
                    pass
        raise Unknown(text(node))

    def enum_members(self, cls: ast.ClassDef) -> dict[str, Any]:
        """An Enum class's members, name → value, as Python's enum makes them (an alias repeats its member)."""
        if id(cls) not in self._members:
            self._members[id(cls)] = self._enum_members(cls)
        return self._members[id(cls)]

    def _enum_members(self, cls: ast.ClassDef) -> dict[str, Any]:
        mixin = next((MIXINS[q] for q in map(self.qual, cls.bases) if q in MIXINS), None)
        members: dict[str, Any] = {}
        for st in cls.body:
            if not (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)):
                continue
            name = st.targets[0].id
            if name.startswith("__") or (name.startswith("_") and name.endswith("_")):
                continue
            if isinstance(st.value, ast.Call) and self.qual(st.value.func) == "enum.auto":
                ints = [v for v in members.values() if isinstance(v, int)]
                value: Any = name.lower() if "enum.StrEnum" in map(self.qual, cls.bases) else \
                    ints[-1] + 1 if ints else 1
            else:
                value = self.literal(st.value, cls.lineno)
            if mixin is not None and not isinstance(value, mixin):
                try:
                    value = mixin(value)
                except (TypeError, ValueError):
                    raise Unknown(f"{cls.name}.{name}") from None
            members[name] = next((v for v in members.values() if v == value), value)
        return members

    def class_kind(self, cls: ast.ClassDef, depth: int = 0) -> str:
        """'enum' | 'model' | 'plain' (pydantic's is-instance check: no constraint); Unknown for anything else."""
        kinds = set()
        for base in cls.bases:
            found = self.resolve(base)
            q = found[1] if found and found[0] == "qual" else None
            if q in ENUMS or q == "pydantic.BaseModel":
                kinds.add("enum" if q in ENUMS else "model")
            elif q in ("builtins.str", "builtins.int", "builtins.float", "builtins.object"):
                continue
            elif found and found[0] == "class" and depth < 20:
                kinds.add(self.class_kind(found[1], depth + 1))
            else:
                raise Unknown(f"class {cls.name}({text(base)})")
        special = {"__get_pydantic_core_schema__", "__get_pydantic_json_schema__", "__get_validators__"}
        if cls.keywords or len(kinds) > 1 or (cls.decorator_list and "enum" not in kinds) or any(
                getattr(st, "name", "") in special for st in cls.body):
            raise Unknown(f"class {cls.name}")
        return kinds.pop() if kinds else "plain"


@functools.lru_cache(maxsize=None)
def _exports(module: str) -> frozenset[str]:
    """What `from module import *` binds, for the standard modules annotations come from (ours, not the file's)."""
    if module not in STAR_MODULES:
        return frozenset()
    mod = importlib.import_module(module)
    return frozenset(getattr(mod, "__all__", None) or (n for n in dir(mod) if not n.startswith("_")))


def _arith(op: ast.operator, a: Any, b: Any, node: ast.AST) -> Any:
    numbers, sequences = (int, float), (str, bytes, list, tuple)
    try:
        if isinstance(a, numbers) and isinstance(b, numbers) and not (isinstance(op, ast.Pow) and abs(b) > 64):
            result = _OPS[type(op)](a, b)
        elif isinstance(op, ast.Add) and type(a) is type(b) and isinstance(a, sequences) or \
                isinstance(op, ast.Mult) and isinstance(a, sequences) and isinstance(b, int) and len(a) * b < 100_000:
            result = _OPS[type(op)](a, b)
        else:
            raise Unknown(text(node))
    except (ArithmeticError, ValueError, TypeError):
        raise Unknown(text(node)) from None
    if isinstance(result, int) and result.bit_length() > 4096 or \
            isinstance(result, sequences) and len(result) > 100_000:
        raise Unknown(text(node))
    return result


def duration(td: dt.timedelta) -> str:
    """pydantic_core's ISO 8601 form of a timedelta (365-day years; the sign in front)."""
    sign, td = ("-" if td < dt.timedelta(0) else ""), abs(td)
    years, days = divmod(td.days, 365)
    hours, rest = divmod(td.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    date = (f"{years}Y" if years else "") + (f"{days}D" if days else "")
    secs = f"{seconds}.{td.microseconds:06d}".rstrip("0") if td.microseconds else (f"{seconds}" if seconds else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return f"{sign}P{date}" + (f"T{clock}" if clock else "" if date else "T0S")


def encode(value: Any) -> Any:
    """A default as pydantic's `encode_default` writes it into the schema (by the value's own type)."""
    if isinstance(value, Member):
        return encode(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ReconcileError("a bytes default that is not UTF-8 (Prefect 2.20's build fails on it too)") from None
    if isinstance(value, (list, tuple, set, frozenset)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        keys = [k.value if isinstance(k, Member) else k for k in value]
        if any(isinstance(k, bool) or not isinstance(k, (str, int, float)) for k in keys):
            raise Unknown(repr(value))
        return {str(k): encode(v) for k, v in zip(keys, value.values())}
    if isinstance(value, dt.timedelta):
        return duration(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)) and getattr(value, "tzinfo", None) is None:
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, pathlib.PurePath, uuid.UUID)):
        return str(value)
    raise Unknown(repr(value))


def flatten_any_of(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    members = [m for s in schemas for m in (s["anyOf"] if len(s) == 1 and "anyOf" in s else [s])]
    unique = list({_hashable(m): m for m in members}.values())
    return unique[0] if len(unique) == 1 else {"anyOf": unique}


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def literal_schema(values: list[Any]) -> dict[str, Any]:
    expected = [encode(v) for v in values]
    out: dict[str, Any] = {"const": expected[0]} if len(expected) == 1 else {"enum": expected}
    kinds = {type(e) for e in expected}
    if len(kinds) == 1 and kinds <= {*JSON_TYPES, type(None)}:
        out["type"] = JSON_TYPES.get(next(iter(kinds)), "null")
    return out


class Types:
    """Annotation → JSON schema, collecting the enum and model definitions it refers to.

    `fallback` mirrors string annotations Prefect could not evaluate in the module
    (a name bound only under TYPE_CHECKING; a quoted name nested in an annotation):
    pydantic then finds little more than builtins and `typing as t` (see FALLBACK).
    """

    def __init__(self, module: Module) -> None:
        self.m = module
        self.defs: dict[str, Any] = {}
        self.extra: dict[str, Optional[bool]] = {}
        self.in_model = 0

    def schema(self, node: ast.AST, fallback: bool, strings_fallback: bool = True, depth: int = 0) -> dict[str, Any]:
        if depth > 30:
            raise Unknown(text(node))
        again = lambda n: self.schema(n, fallback, strings_fallback, depth + 1)  # noqa: E731
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                inner = ast.parse(node.value.strip(), mode="eval").body
            except SyntaxError:
                raise Unknown(node.value) from None
            return self.schema(inner, strings_fallback, strings_fallback, depth + 1)
        if isinstance(node, ast.Constant) and node.value is None:
            return {"type": "null"}
        q = self.m.qual(node.value, fallback) if isinstance(node, ast.Subscript) else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) or q in ("typing.Optional", "typing.Union"):
            return self.union(self.members(node, fallback), fallback, again)
        if isinstance(node, ast.Subscript):
            args = args_of(node)
            if q == "typing.Literal":
                return literal_schema(self.literals(args, fallback))
            if q == "typing.Annotated":
                return self.annotated(again(args[0]), args[1:])
            if q in LISTS | SETS and len(args) == 1:
                return {"items": again(args[0]), "type": "array", **({"uniqueItems": True} if q in SETS else {})}
            if q in DICTS and len(args) == 2:
                keys, values = again(args[0]), again(args[1])
                values.pop("title", None)
                if "$ref" in keys or "pattern" in keys or keys.get("type") == "string" and len(keys) > 1:
                    raise Unknown(text(node))
                return {"additionalProperties": values or True, "type": "object"}
            if q in TUPLES:
                if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
                    return {"items": again(args[0]), "type": "array"}
                items = [again(a) for a in args]
                out = {"maxItems": len(items), "minItems": len(items), "type": "array"}
                return {**out, "prefixItems": items} if items else out
            if q in ("typing.Type", "typing.Callable", "builtins.type"):
                return {}
            raise Unknown(text(node))
        found = self.m.resolve(node, fallback)
        if found is None:
            raise Unknown(text(node), prefect_too=fallback)
        kind, payload = found
        if self.in_model and (kind == "qual" and payload.startswith("pendulum.") or
                              kind == "class" and self.m.class_kind(payload) == "plain"):
            raise Unknown(text(node))  # pydantic refuses these in a model (Prefect adapts them for parameters only)
        if kind == "qual" and (payload in SIMPLE or payload in BARE):
            return dict(SIMPLE[payload] if payload in SIMPLE else BARE[payload])
        if kind == "class":
            return self.local_class(payload)
        if kind == "value" and isinstance(node, ast.Name):
            return again(payload)  # a type alias
        raise Unknown(text(node))

    def members(self, node: ast.AST, fallback: bool, depth: int = 0) -> list[ast.AST]:
        """Union members, flattened as typing flattens nested Unions, Optionals, `|` and aliases of them."""
        if depth > 20:
            raise Unknown(text(node))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.members(node.left, fallback, depth + 1) + self.members(node.right, fallback, depth + 1)
        if isinstance(node, ast.Subscript):
            q = self.m.qual(node.value, fallback)
            if q == "typing.Optional" and len(args_of(node)) == 1:
                return self.members(args_of(node)[0], fallback, depth + 1) + [ast.Constant(None)]
            if q == "typing.Union":
                return [m for a in args_of(node) for m in self.members(a, fallback, depth + 1)]
        found = self.m.resolve(node, fallback) if isinstance(node, ast.Name) else None
        if found and found[0] == "value" and isinstance(found[1], (ast.Subscript, ast.BinOp)):
            return self.members(found[1], fallback, depth + 1)
        return [node]

    def union(self, members: list[ast.AST], fallback: bool, again: Any) -> dict[str, Any]:
        none = lambda m: isinstance(m, ast.Constant) and m.value is None or \
            self.m.qual(m, fallback) == "builtins.None"  # noqa: E731
        unique = {ast.dump(m): m for m in reversed(members) if not none(m)}  # typing keeps the first of equals
        schemas = [again(m) for m in reversed(unique.values())]
        inner = schemas[0] if len(schemas) == 1 else flatten_any_of(schemas) if schemas else {"type": "null"}
        if not any(map(none, members)) or inner == {"type": "null"}:
            return inner
        return flatten_any_of([inner, {"type": "null"}])  # pydantic's nullable schema

    def literals(self, args: list[ast.AST], fallback: bool) -> list[Any]:
        values: list[Any] = []
        for a in args:
            if isinstance(a, ast.Subscript) and self.m.qual(a.value, fallback) == "typing.Literal":
                new = self.literals(args_of(a), fallback)
            else:
                new = [self.m.literal(a)]
                if fallback and isinstance(new[0], Member):
                    raise Unknown(text(a), prefect_too=True)
            values += [v for v in new if not any(type(v) is type(w) and v == w for w in values)]
        return values

    def annotated(self, schema: dict[str, Any], metadata: list[ast.AST]) -> dict[str, Any]:
        for meta in metadata:
            if isinstance(meta, ast.Call) and self.m.qual(meta.func) == "pydantic.Field":
                schema = self.constrain(schema, {k.arg: k.value for k in meta.keywords if k.arg})
            elif not isinstance(meta, ast.Constant):  # plain values are ignored by pydantic
                raise Unknown(text(meta))
        return schema

    def constrain(self, schema: dict[str, Any], kwargs: dict[str, ast.AST]) -> dict[str, Any]:
        out = dict(schema)
        for key, node in kwargs.items():
            kind = out.get("type")
            if key in ("default", "default_factory", "title", "description", "alias", "examples"):
                continue
            if key in CONSTRAINTS and kind in ("integer", "number", "string"):
                out[CONSTRAINTS[key]] = encode(self.m.literal(node))
            elif key in ("min_length", "max_length") and kind in LENGTHS:
                out[LENGTHS[kind][key == "max_length"]] = encode(self.m.literal(node))
            else:
                raise Unknown(f"Field({key}=...)")
        return out

    def local_class(self, cls: ast.ClassDef) -> dict[str, Any]:
        kind = self.m.class_kind(cls)
        if kind == "plain":
            return {}
        if cls.name not in self.defs:
            self.defs[cls.name] = None  # being built: a model may refer to itself
            try:
                self.in_model += 1
                self.defs[cls.name] = self.enum_def(cls) if kind == "enum" else self.model_def(cls)
            except BaseException:
                del self.defs[cls.name]
                raise
            finally:
                self.in_model -= 1
        return {"$ref": REF + cls.name}

    def enum_def(self, cls: ast.ClassDef) -> dict[str, Any]:
        doc = ast.get_docstring(cls, clean=True)
        doc = None if doc == "An enumeration." else doc  # enum's own default docstring: pydantic leaves it out
        values = [encode(v) for v in self.m.enum_members(cls).values()]
        kinds = {type(v) for v in values}
        return {"title": cls.name, **({"description": doc} if doc else {}), "enum": values,
                **({"type": JSON_TYPES[kinds.pop()]} if len(kinds) == 1 and kinds <= set(JSON_TYPES) else {})}

    def model_fields(self, cls: ast.ClassDef, owner: str, depth: int = 0) -> dict[str, tuple[ast.AST, Any, int]]:
        """Fields (parents' first) → (annotation, value, line of the class); `extra` settings noted for `owner`."""
        fields: dict[str, tuple[ast.AST, Any, int]] = {}
        for base in cls.bases:
            found = self.m.resolve(base)
            if found and found[0] == "class" and depth < 20:
                fields.update(self.model_fields(found[1], owner, depth + 1))
        for st in cls.body:
            if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and \
                    not st.target.id.startswith("_") and st.target.id != "model_config":
                ann = st.annotation
                if self.m.qual(ann.value if isinstance(ann, ast.Subscript) else ann) != "typing.ClassVar":
                    fields[st.target.id] = (ann, st.value, cls.lineno)
            elif isinstance(st, ast.ClassDef) and st.name == "Config" or \
                    isinstance(st, ast.Assign) and any(getattr(t, "id", "") == "model_config" for t in st.targets):
                self.config(cls, st, owner)
        return fields

    def config(self, cls: ast.ClassDef, st: ast.stmt, owner: str) -> None:
        """Model settings: only those that leave the JSON schema alone, and `extra`."""
        if isinstance(st, ast.ClassDef):
            pairs = [(t.id, a.value) for a in st.body if isinstance(a, ast.Assign) for t in a.targets
                     if isinstance(t, ast.Name)]
        elif isinstance(st.value, ast.Call) and self.m.qual(st.value.func) == "pydantic.ConfigDict":
            pairs = [(k.arg, k.value) for k in st.value.keywords]
        elif isinstance(st.value, ast.Dict) and None not in st.value.keys:
            pairs = [(self.m.literal(k), v) for k, v in zip(st.value.keys, st.value.values)]
        else:
            raise Unknown(f"{cls.name}'s model_config")
        for key, node in pairs:
            if key == "extra":
                self.extra[owner] = {"forbid": False, "allow": True}.get(str(self.m.literal(node)))
            elif not isinstance(key, str) or key not in HARMLESS_CONFIG:
                raise Unknown(f"{cls.name}'s {key} setting")

    def model_def(self, cls: ast.ClassDef) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for name, (ann, value, line) in self.model_fields(cls, cls.name).items():
            schema = self.schema(ann, False, False)
            field: dict[str, ast.AST] = {}
            if isinstance(ann, ast.Subscript) and self.m.qual(ann.value) == "typing.Annotated":
                for meta in args_of(ann)[1:]:
                    field.update({k.arg: k.value for k in getattr(meta, "keywords", []) if k.arg})
            default: Any = value if value is not None else Ellipsis
            if isinstance(value, ast.Call) and self.m.qual(value.func) == "pydantic.Field":
                field.update({k.arg: k.value for k in value.keywords if k.arg})
                default = value.args[0] if value.args else field.get("default", Ellipsis)
                schema = self.constrain(schema, field)
            key = self.m.literal(field["alias"]) if "alias" in field else name
            if not isinstance(key, str):
                raise Unknown(f"{cls.name}.{name}'s alias")
            default = self.m.literal(default, line) if isinstance(default, ast.AST) else default
            if default is not Ellipsis:
                schema["default"] = encode(default)
            elif "default_factory" not in field:
                required.append(key)
            for attr in ("title", "description", "examples"):
                if attr in field:
                    schema[attr] = encode(self.m.literal(field[attr]))
            if "title" not in schema and self.titled(ann):
                schema["title"] = key.title().replace("_", " ").strip()
            props[key] = schema
        doc, extra = ast.get_docstring(cls, clean=True), self.extra.get(cls.name)
        return {"properties": props, **({"required": required} if required else {}), "title": cls.name,
                "type": "object", **({"description": doc} if doc else {}),
                **({"additionalProperties": extra} if extra is not None else {})}

    def titled(self, ann: ast.AST, depth: int = 0) -> bool:
        """pydantic's field_title_should_be_set: no title for (optional) models and enums, which carry their own."""
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                ann = ast.parse(ann.value.strip(), mode="eval").body
            except SyntaxError:
                return True
        members = [m for m in self.members(ann, False) if not (isinstance(m, ast.Constant) and m.value is None)]
        if len(members) != 1 or depth > 10:
            return True
        if isinstance(members[0], ast.Subscript) and self.m.qual(members[0].value) == "typing.Annotated":
            return self.titled(args_of(members[0])[0], depth + 1)
        found = self.m.resolve(members[0])
        return not (found and found[0] == "class" and self.m.class_kind(found[1]) in ("enum", "model"))


def referenced(schema: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The definitions reachable from a schema through $ref (pydantic writes no others)."""
    found: dict[str, Any] = {}
    todo = [schema]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF) and ref[len(REF):] not in found:
                found[ref[len(REF):]] = defs.get(ref[len(REF):])
                todo.append(found[ref[len(REF):]])
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)
    return found


def names_in(node: ast.AST) -> set[str]:
    """Names evaluating this annotation reads (quoted names nested in it stay forward references)."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Constant):
        return set()
    return set().union(*(names_in(c) for c in ast.iter_child_nodes(node)))


_ADMONITION = re.compile(r"^(?P<type>[\w][\s\w-]*):(\s+(?P<title>[^\s].*))?\s*$", re.IGNORECASE)


def parameter_docs(doc: Optional[str]) -> dict[str, str]:
    """griffe's Google-style reading of a docstring's parameters section (Prefect's parameter descriptions)."""
    lines = inspect.cleandoc(doc.rstrip()).split("\n") if doc else []
    empty = lambda i: not lines[i].strip()  # noqa: E731
    result: dict[str, str] = {}
    i, code = 0, False
    while i < len(lines):
        fence = lines[i].lower().lstrip(" ").startswith("```")
        if code or fence:
            code = code != fence
        elif match := _ADMONITION.match(lines[i]):
            blank1 = i < len(lines) - 1 and empty(i + 1)
            indented1 = i < len(lines) - 1 and not blank1 and lines[i + 1].startswith(" ")
            indented2 = i < len(lines) - 2 and not empty(i + 2) and lines[i + 2].startswith(" ")
            if (indented1 or indented2) and (i == 0 or empty(i - 1)) and not (indented2 and blank1):
                items, i = _block_items(lines, i + 1)  # every section and admonition spans the same lines
                if match["type"].lower() in ("args", "arguments", "params", "parameters"):
                    result = {}  # Prefect keeps the last parameters section
                    for first, *rest in (item for item in items if ":" in item[0]):
                        name, description = first.split(":", 1)
                        name = name.split("(", 1)[0].strip() if "(" in name and name.endswith(")") else name
                        result[name] = "\n".join([description.lstrip(), *rest]).rstrip("\n")
        i += 1
    return result


def _block_items(lines: list[str], start: int) -> tuple[list[list[str]], int]:
    """griffe's _read_block_items: items at the block's indent, deeper lines continue one; (items, last line)."""
    n = start
    while n < len(lines) and not lines[n].strip():
        n += 1
    indent = len(lines[n]) - len(lines[n].lstrip()) if n < len(lines) else 0
    if indent == 0:
        return [], n - 1
    items, current = [], [lines[n][indent:]]
    for n in range(n + 1, len(lines) + 1):
        line = lines[n] if n < len(lines) else None
        if line is None or line.strip() and not line.startswith(" " * indent):
            break
        if not line.strip():
            current.append("")
        elif line.startswith(" " * indent * 2):
            current.append(line[indent * 2:])
        elif line.startswith(" " * (indent + 1)):
            current.append(line.lstrip())
        else:
            items.append(current)
            current = [line[indent:]]
    items.append(current)
    return items, n - 1
