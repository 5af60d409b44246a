"""The definitions for the enums and pydantic models a flow file defines, which its parameters' schemas $ref.

`Definitions` is the half of `schema.Types` that builds them; it uses the annotation half (`schema`,
`members`, `constrain`) through `self`.
"""
from __future__ import annotations

import ast
from typing import Any, Callable, Optional

from .defaults import encode
from .module import Module, Unknown, args_of
from .typeschemas import HARMLESS_CONFIG, JSON_TYPES, REF


class Definitions:
    """Enum and model classes → definitions in `defs`, each referred to as {"$ref": REF + name}."""

    m: Module
    defs: dict[str, Any]
    extra: dict[str, Optional[bool]]   # a model's `extra` setting: additionalProperties
    in_model: int
    schema: Callable[..., dict[str, Any]]        # from schema.Types
    members: Callable[..., list[ast.AST]]
    constrain: Callable[..., dict[str, Any]]

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
