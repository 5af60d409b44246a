"""Reading a flow file's top-level bindings without running it: names, imports, literal values.

The file is untrusted: `Module` indexes what its top level binds and evaluates literal expressions
(constants, enum members, a few stdlib constructors) under a work budget; what cannot be known
without running code raises `Unknown`.  Nothing here imports or executes the file.
"""
from __future__ import annotations

import ast
import builtins
import datetime as dt
import decimal
import functools
import importlib
import pathlib
import uuid
from dataclasses import dataclass
from typing import Any, Optional

BUILTINS = frozenset(dir(builtins))
ENUMS = {"enum.Enum", "enum.IntEnum", "enum.StrEnum"}
MIXINS = {"builtins.str": str, "enum.StrEnum": str, "builtins.int": int, "enum.IntEnum": int, "builtins.float": float}
CANON = [("typing_extensions.", "typing."), ("collections.abc.", "typing."), ("pydantic.main.", "pydantic."),
         ("pydantic.types.", "pydantic."), ("pydantic.networks.", "pydantic."), ("pydantic.fields.", "pydantic."),
         ("pydantic.config.", "pydantic."), ("prefect.flows.", "prefect."), ("prefect.tasks.", "prefect."),
         ("pendulum.datetime.", "pendulum."), ("pendulum.date.", "pendulum.")]
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
