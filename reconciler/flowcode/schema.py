"""Pydantic 2's JSON Schema for annotations and defaults read from a syntax tree, as Prefect 2.20 writes it.

Nothing here imports or runs the flow file.  `Module` indexes its top-level
bindings and evaluates literal expressions (constants, enum members, a few
stdlib constructors, with a work budget: the file is untrusted); `Types` turns
annotations into schemas (the enums and models they name: definitions.py;
defaults: defaults.py).  What cannot be known without running code raises
`Unknown`; the caller leaves that parameter unconstrained and warns.
"""
from __future__ import annotations

import ast
from typing import Any, Optional

from .defaults import encode
from .definitions import Definitions
from .module import Member, Module, Unknown, args_of, text
from .typeschemas import BARE, CONSTRAINTS, DICTS, JSON_TYPES, LENGTHS, LISTS, SETS, SIMPLE, TUPLES


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


class Types(Definitions):
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


def names_in(node: ast.AST) -> set[str]:
    """Names evaluating this annotation reads (quoted names nested in it stay forward references)."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Constant):
        return set()
    return set().union(*(names_in(c) for c in ast.iter_child_nodes(node)))
