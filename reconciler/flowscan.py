"""A flow's name, version and parameter schema, read from its file's syntax tree: the file is never imported.

`reconcile build` and `check` run on untrusted pull requests, so the flow code
is parsed with `ast` only.  `scan` gives what Prefect 2.20's `deployment build`
would write (flow name, version = md5 of the file, parameter schema as
`parameter_schema(fn).dict()` makes it with pydantic 2); what cannot be known
without running code leaves that parameter unconstrained, with a warning.
`schema_equivalent` compares two parameter schemas in meaning, across the
dialects of the Prefect 2.x / pydantic 1 and 2 versions that wrote them.
"""
from __future__ import annotations

import ast
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ManifestError, ReconcileError
from .flowschema import DECIMAL, Module, Types, Unknown, encode, names_in, parameter_docs, referenced, sort, text

_ODD = (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError)
RESERVED = ("return_state", "wait_for")      # prefect.flows: raise_for_reserved_arguments
BANNED = ("/", "%", "&", ">", "<")           # prefect._internal.schemas.validators.BANNED_CHARACTERS


@dataclass(frozen=True)
class FlowInfo:
    flow_name: str
    function: str
    version: str
    parameter_openapi_schema: dict[str, Any]
    warnings: tuple[str, ...]
    line: int


def scan(path: Path, function: str) -> FlowInfo:
    """What Prefect 2.20 would learn by importing `path` and looking at `function`, learnt without importing it."""
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ReconcileError(f"{file}: cannot read the flow file: {exc.strerror or exc}") from None
    try:
        tree = ast.parse(data, filename=file)
    except SyntaxError as exc:
        raise ManifestError(file, exc.lineno or 1, exc.offset or 1, None, f"syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ManifestError(file, 1, 1, None, f"syntax error: {exc}") from None
    module = Module(tree)
    functions = {st.name: st for st in tree.body if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef))}
    fn = functions.get(function)
    if fn is None:
        flows = sorted(name for name, st in functions.items() if _decorator(module, st) is not None)
        raise ReconcileError(f"{file}: no top-level function {function!r}; the flows in it are: "
                             f"{', '.join(flows) if flows else 'none'}")
    decorator = _decorator(module, fn)
    if decorator is None:
        task = any(module.qual(d.func if isinstance(d, ast.Call) else d) == "prefect.task" for d in fn.decorator_list)
        raise ReconcileError(f"{file}:{fn.lineno}: {function!r} is not a flow "
                             f"({'it is a @task' if task else 'it has no @flow decorator'})")
    keywords = {k.arg: k.value for k in getattr(decorator, "keywords", []) if k.arg}
    warnings: list[str] = []
    flow_name = function.replace("_", "-")
    if "name" in keywords:
        try:
            given = module.literal(keywords["name"], fn.lineno)
        except (Unknown, *_ODD):
            raise ReconcileError(f"{file}:{decorator.lineno}: the flow's name={text(keywords['name'])} is not a "
                                 "literal: it is known only by running the code") from None
        if given is not None and not isinstance(given, str):
            raise ReconcileError(f"{file}:{decorator.lineno}: the flow's name must be a string, not {given!r}")
        if given and any(c in given for c in BANNED):
            raise ReconcileError(f"{file}:{decorator.lineno}: flow name {given!r} contains a character Prefect "
                                 f"forbids (any of {' '.join(BANNED)})")
        flow_name = given or flow_name
    version = hashlib.md5(data).hexdigest()  # prefect.flows.Flow: file_hash(flow_file) when no version is given
    if "version" in keywords:
        try:
            given = module.literal(keywords["version"], fn.lineno)
            version = (given if isinstance(given, str) else str(given)) if given not in (None, "") else version
        except (Unknown, *_ODD):
            warnings.append(f"{file}:{decorator.lineno}: version={text(keywords['version'])} is not a literal; "
                            "using the file's hash")
    validates = not (isinstance(keywords.get("validate_parameters"), ast.Constant)
                     and keywords["validate_parameters"].value is False)
    schema = _parameter_schema(module, fn, file, warnings, validates)
    return FlowInfo(flow_name, function, version, schema, tuple(warnings), fn.lineno)


def manifest_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as `prefect deployment build` writes it into a manifest: every ParameterSchema field, null too.

    (`parameter_schema(fn).dict()` leaves out `required`/`definitions` when empty; the manifest, a dump of the
    whole Deployment model, writes `required: null` and `definitions: null`.)
    """
    return {"title": schema.get("title", "Parameters"), "type": schema.get("type", "object"),
            "properties": schema.get("properties", {}), "required": schema.get("required"),
            "definitions": schema.get("definitions")}


def _decorator(module: Module, fn: ast.AST) -> Any:
    for d in getattr(fn, "decorator_list", []):
        if module.qual(d.func if isinstance(d, ast.Call) else d) == "prefect.flow":
            return d
    return None


def _parameter_schema(module: Module, fn: ast.FunctionDef, file: str, warnings: list[str],
                      validates: bool = True) -> dict[str, Any]:
    a = fn.args
    positional = a.posonlyargs + a.args
    params: list[tuple[ast.arg, Any]] = list(zip(positional, [None] * (len(positional) - len(a.defaults)) + a.defaults))
    params += [(a.vararg, None)] if a.vararg else []
    params += list(zip(a.kwonlyargs, a.kw_defaults))
    params += [(a.kwarg, None)] if a.kwarg else []
    # inspect.signature(fn, eval_str=True) evaluates string annotations in the module; if one fails
    # (a name bound only under TYPE_CHECKING), Prefect keeps them all as strings, which pydantic then
    # cannot resolve beyond builtins: mirror that.
    strings: dict[str, ast.AST] = {}
    for arg, _ in params:
        ann = arg.annotation
        if module.future_annotations and ann is not None:
            strings[arg.arg] = ann
            continue
        alias = module.binding(ann.id) if isinstance(ann, ast.Name) else None
        if alias and alias[0] == "value" and isinstance(alias[1], ast.Constant):
            ann = alias[1]  # a name for a string: still a string annotation, evaluated in the module
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                strings[arg.arg] = ast.parse(ann.value.strip(), mode="eval").body
            except SyntaxError:
                strings[arg.arg] = ast.Name("<invalid>")
    unbound = sorted({n for node in strings.values() for n in names_in(node) if module.binding(n) is None
                      and not module.opaque_star})
    if unbound and validates:  # prefect.flows.Flow.__init__: ValidatedFunction(fn) evaluates every annotation
        warnings.append(f"{file}:{fn.lineno}: Prefect 2.20 cannot load this flow: @flow validates parameters, which "
                        f"evaluates the annotations, and {', '.join(unbound)} is not defined when the flow runs "
                        "(import it outside TYPE_CHECKING, or pass validate_parameters=False)")
    docs = parameter_docs(ast.get_docstring(fn, clean=True))
    types = Types(module)
    props: dict[str, Any] = {}
    required: list[str] = []
    for position, (arg, default) in enumerate(params):
        name, where = arg.arg, f"{file}:{arg.lineno}: parameter {arg.arg}"
        if name in RESERVED:
            raise ReconcileError(f"{where}: the name is reserved by Prefect (its flows cannot take it)")
        if name.startswith("_"):
            raise ReconcileError(f"{where}: Prefect 2.20 cannot build a parameter schema for a name starting "
                                 "with '_' (its deployment build fails)")
        schema: dict[str, Any] = {}
        if arg.annotation is not None:
            shown = arg.annotation.value if isinstance(arg.annotation, ast.Constant) else text(arg.annotation)
            try:
                if name in strings:
                    schema = types.schema(strings[name], bool(unbound), True)
                else:
                    schema = types.schema(arg.annotation, False, True)
            except ReconcileError as exc:
                raise ReconcileError(f"{where}: {exc}") from None
            except _ODD as exc:  # a file built to trip the reader: say so, never crash
                warnings.append(f"{where}: cannot resolve annotation {shown!r} ({type(exc).__name__}); "
                                "left unconstrained")
            except Unknown as exc:
                if exc.prefect_too and not unbound:
                    warnings.append(f"{where}: annotation {shown!r} left unconstrained, as Prefect 2 does: pydantic "
                                    f"cannot resolve the quoted {str(exc)!r} inside it")
                elif name in strings and unbound:
                    warnings.append(f"{where}: annotation {shown!r} left unconstrained, as Prefect 2 does: it cannot "
                                    f"evaluate this flow's string annotations ({', '.join(unbound)} not defined "
                                    "when the flow runs)")
                else:
                    detail = "" if str(exc) == shown else f" ({exc})"
                    warnings.append(f"{where}: cannot resolve annotation {shown!r} without importing{detail}; "
                                    "left unconstrained")
        prop = {**schema, "title": name, "position": position}
        if default is None or isinstance(default, ast.Constant) and default.value is Ellipsis:
            required.append(name)
        else:
            try:
                prop["default"] = encode(module.literal(default, fn.lineno))
            except (Unknown, *_ODD):
                warnings.append(f"{where}: cannot evaluate the default {text(default)!r} without running the code; "
                                "left out of the schema")
            except ReconcileError as exc:
                raise ReconcileError(f"{where}: {exc}") from None
        if name in docs:
            prop["description"] = docs[name]
        props[name] = prop
    defs = referenced(props, types.defs)
    raw = sort({"properties": props, "required": required, **({"$defs": defs} if defs else {})})
    out: dict[str, Any] = {"title": "Parameters", "type": "object", "properties": raw["properties"]}
    if required:
        out["required"] = raw["required"]
    if defs:
        out["definitions"] = raw["$defs"]
    return out


# ----------------------------------------------------------------------------------------------------------------
# Comparing schemas in meaning

_MISSING = object()
_ANNOTATIONS = {"title", "description", "default", "position", "examples", "writeOnly", "readOnly", "nullable",
                "$defs", "definitions", "$schema"}


def schema_equivalent(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """How parameter schema `b` differs in meaning from `a` (e.g. a manifest's and the code's); [] when equivalent.

    Compared: parameter names, the required set, types (normalised), defaults and positions (when both have
    them).  Ignored: the dialect of the Prefect/pydantic version that wrote each (definitions/$defs,
    allOf-wrapped refs, prefixItems/items lists, nullability, titles, key order, pydantic 1 leaving out
    `default: null`, the string form pydantic 2 adds to Decimal, ...).
    """
    pa, pb = _params(a), _params(b)
    removed = [n for n in pa if n not in pb]
    added = [n for n in pb if n not in pa]
    renamed: dict[str, str] = {}
    for old in removed:
        same_place = [n for n in added if pa[old][3] is not None and pb[n][3] == pa[old][3]]
        if same_place and same_place[0] not in renamed.values():
            renamed[old] = same_place[0]
    out = []
    for old in removed:
        out.append(f"parameter {old!r} was renamed to {renamed[old]!r}" if old in renamed
                   else f"parameter {old!r} was removed")
    for new in added:
        if new not in renamed.values():
            out.append(f"parameter {new!r} was added" + (" (required)" if pb[new][1] else ""))
    pairs = [(n, n) for n in pa if n in pb] + list(renamed.items())
    for old, new in pairs:
        (ta, ra, da, xa), (tb, rb, db, xb) = pa[old], pb[new]
        label = f"parameter {new!r}"
        if ra != rb:
            out.append(f"{label} is now required" if rb else f"{label} is no longer required")
        if _key(ta) != _key(tb):
            sa, sb = _describe(ta), _describe(tb)
            if sa == sb:
                sa, sb = _key(ta), _key(tb)
            out.append(f"{label}: type changed from {sa} to {sb}")
        if da is not _MISSING and db is not _MISSING and not _same(_coerce(da, ta), _coerce(db, tb)):
            out.append(f"{label}: default changed from {_show(da)} to {_show(db)}")
        if xa is not None and xb is not None and xa != xb and old == new:
            out.append(f"{label}: position changed from {xa} to {xb}")
    return out


def _params(schema: Any) -> dict[str, tuple[Any, bool, Any, Any]]:
    schema = schema if isinstance(schema, dict) else {}
    props = schema.get("properties") or {}
    defs = {**(schema.get("$defs") or {}), **(schema.get("definitions") or {})}
    required = set(schema.get("required") or [])
    out = {}
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        # pydantic 1 leaves out `default: null`: an optional parameter without a default defaults to None
        default = prop["default"] if "default" in prop else (_MISSING if name in required else None)
        out[name] = (_norm(prop, defs), name in required, default, prop.get("position"))
    return out


def _norm(s: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """A schema reduced to its meaning: refs inlined, null and annotations dropped, one spelling per construct."""
    if not isinstance(s, dict) or len(seen) > 50:
        return {}
    if "$ref" in s:
        name = str(s["$ref"]).rsplit("/", 1)[-1]
        target = defs.get(name)
        return _norm(target, defs, (*seen, name)) if isinstance(target, dict) and name not in seen else {"ref": name}
    if isinstance(s.get("allOf"), list) and len(s["allOf"]) == 1:
        return _norm(s["allOf"][0], defs, seen)
    for key in ("anyOf", "oneOf"):
        if isinstance(s.get(key), list):
            members: list[Any] = []
            for m in s[key]:
                if isinstance(m, dict) and m.get("type") in ("null", ["null"]) and len(m) == 1:
                    continue  # nullability: pydantic 1 never wrote it
                n = _norm(m, defs, seen)
                if not n:
                    return {}  # anything, or ...: anything
                members.extend(n["anyOf"] if set(n) == {"anyOf"} else [n])
            enums = [v for m in members if set(m) == {"enum"} for v in m["enum"]]
            members = [m for m in members if set(m) != {"enum"}] + ([{"enum": _values(enums)}] if enums else [])
            if {"type": "number"} in members:  # pydantic 2 writes Decimal as number-or-numeric-string
                members = [m for m in members if m != DECIMAL["anyOf"][1]]
            unique = sorted({_key(m): m for m in members}.values(), key=_key)
            return unique[0] if len(unique) == 1 else {"anyOf": unique} if unique else {}
    out: dict[str, Any] = {}
    for k, v in s.items():
        if k in _ANNOTATIONS:
            continue
        if k == "type":
            kinds = [t for t in (v if isinstance(v, list) else [v]) if t != "null"]
            if kinds:
                out[k] = kinds[0] if len(kinds) == 1 else sorted(kinds)
        elif k in ("enum", "const"):
            out["enum"] = _values(v if k == "enum" and isinstance(v, list) else [v])
        elif k in ("items", "prefixItems"):
            n = [_norm(x, defs, seen) for x in v] if isinstance(v, list) else _norm(v, defs, seen)
            if n:
                out["items"] = n
        elif k == "additionalProperties":
            n = _norm(v, defs, seen) if isinstance(v, dict) else (False if v is False else {})
            if n or n is False:
                out[k] = n
        elif k == "properties" and isinstance(v, dict):
            out[k] = {p: _norm(x, defs, seen) for p, x in v.items()}
        elif k == "required":
            out[k] = sorted(v or [])
        elif k == "format":
            out[k] = "duration" if v == "time-delta" else v
        else:
            out[k] = v
    if "enum" in out or out.get("format") == "duration":  # enum values carry their type; v1 wrote durations as numbers
        out.pop("type", None)
    if out.get("format") == "uri":  # pydantic 1 and 2 differ in the URL length limits they write
        out.pop("maxLength", None), out.pop("minLength", None)
    return out


def _values(values: list[Any]) -> list[Any]:
    return sorted({_key(v): v for v in values if v is not None}.values(), key=_key)


_ISO_DURATION = re.compile(r"^(-)?P(?:(\d+)Y)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _coerce(value: Any, norm: Any) -> Any:
    """Defaults pydantic 1 and 2 write differently: durations (seconds vs ISO 8601), Decimals (number vs string)."""
    if isinstance(value, str) and isinstance(norm, dict):
        match = _ISO_DURATION.match(value) if norm.get("format") == "duration" else None
        if match:
            y, d, h, m, sec = (float(g or 0) for g in match.groups()[1:])
            return (-1 if match[1] else 1) * ((y * 365 + d) * 86400 + h * 3600 + m * 60 + sec)
        if norm.get("type") == "number":
            try:
                return float(value)
            except ValueError:
                pass
    return value


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _same(x: Any, y: Any) -> bool:
    x, y = (v.isoformat() if isinstance(v, (dt.date, dt.time)) else v for v in (x, y))
    if isinstance(x, bool) or isinstance(y, bool):
        return type(x) is type(y) and x == y
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return x == y or (x != x and y != y)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same(p, q) for p, q in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return x == y


def _show(value: Any) -> str:
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _describe(n: Any) -> str:
    if not n:
        return "any"
    if "anyOf" in n:
        return " or ".join(_describe(m) for m in n["anyOf"])
    if "enum" in n:
        return "one of " + ", ".join(json.dumps(v) for v in n["enum"])
    if "ref" in n:
        return str(n["ref"])
    kind = n.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    items, extra = n.get("items"), n.get("additionalProperties")
    if kind == "array" and isinstance(items, list):
        kind = "tuple of (" + ", ".join(_describe(i) for i in items) + ")"
    elif kind == "array" and items:
        kind = f"array of {_describe(items)}"
    elif kind in ("object", "any") and isinstance(n.get("properties"), dict):
        kind = "object with " + ", ".join(sorted(n["properties"])) if n["properties"] else "object"
    elif kind == "object" and isinstance(extra, dict):
        kind = f"object of {_describe(extra)}"
    if "format" in n:
        kind = n["format"] if kind == "any" else f"{kind} ({n['format']})"
    shown = ("type", "items", "properties", "additionalProperties", "format", "required")
    rest = sorted(k for k in n if k not in shown)
    return kind + (" with " + ", ".join(f"{k}={json.dumps(n[k])}" for k in rest) if rest else "")
