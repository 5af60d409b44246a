"""Pydantic 2's JSON Schema for annotations and defaults read from a syntax tree, as Prefect 2.20 writes it.

Nothing here imports or runs the flow file.  `Module` indexes its top-level
bindings and evaluates literal expressions (constants, enum members, a few
stdlib constructors, with a work budget: the file is untrusted); `Types` turns
annotations into schemas.  What cannot be known without running code raises
`Unknown`; the caller leaves that parameter unconstrained and warns.
"""
from __future__ import annotations

import ast
import datetime as dt
import decimal
import pathlib
import uuid
from typing import Any, Optional

from ..errors import ReconcileError
from .module import Member, Module, Unknown, args_of, text
from .typeschemas import (
    BARE,
    CONSTRAINTS,
    DICTS,
    HARMLESS_CONFIG,
    JSON_TYPES,
    LENGTHS,
    LISTS,
    REF,
    SETS,
    SIMPLE,
    TUPLES,
)


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


