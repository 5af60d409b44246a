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
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ManifestError, ReconcileError
from ..manifests import files
from .defaults import encode
from .definitions import referenced
from .docs import parameter_docs
from .module import Module, Unknown, text
from .schema import Types, names_in
from .schemadiff import schema_equivalent
from .typeschemas import sort

__all__ = ["FlowInfo", "scan", "manifest_schema", "schema_equivalent"]

_ODD = (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError)
MAX_FLOW_BYTES = 16 << 20                    # a flow file is read whole, once
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
        data = files.read(Path(path), limit=MAX_FLOW_BYTES)   # a regular file, bounded: a link may lead to a FIFO
    except files.Unreadable as exc:
        raise ReconcileError(f"{file}: cannot read the flow file: {exc}") from None
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
