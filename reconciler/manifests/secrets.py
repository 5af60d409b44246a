"""Which values are secrets, how they are masked in every output, and the digests a saved plan keeps of them.

A value is secret when it is
- a field a block's schema lists in `secret_fields` (the server's list, or Prefect 2's own table below),
- a `settings` key named like a credential (password, token, secret, key, credential, passphrase,
  private, auth: case-insensitive, anywhere in the name),
- or anything under an `env` mapping, anywhere in infrastructure or `infra_overrides` (dotted
  `env.FOO` keys included).
Masked values keep their key; the value becomes `(sensitive)`.  None is not a secret (nothing to hide).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Iterable

SENSITIVE = "(sensitive)"
CHANGED = "(sensitive value changed)"
CREDENTIAL_WORDS = ("password", "token", "secret", "key", "credential", "passphrase", "private", "auth")

# Prefect 2.20's core blocks: their schemas' `secret_fields` (the server reports the same list).
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "s3": ("aws_access_key_id", "aws_secret_access_key"),
    "gcs": ("service_account_info",),
    "azure": ("azure_storage_connection_string", "azure_storage_account_name", "azure_storage_account_key",
              "azure_storage_tenant_id", "azure_storage_client_id", "azure_storage_client_secret",
              "azure_storage_container"),
    "smb": ("smb_username", "smb_password"),
    "github": ("access_token",),
    "gitlab-repository": ("credentials",),
    "docker-registry": ("password",),
}

Path = tuple  # a path of keys (str) and list positions (int)
Rule = Callable[[Path], bool]


def credential_like(key: Any) -> bool:
    return isinstance(key, str) and any(word in key.lower() for word in CREDENTIAL_WORDS)


def _flat(path: Path) -> list[str]:
    """Keys split at dots (`env.FOO` is `env` then `FOO`), list positions as `*`."""
    out: list[str] = []
    for part in path:
        out.extend(part.split(".") if isinstance(part, str) else ["*"])
    return out


def under_env(path: Path) -> bool:
    return "env" in _flat(path)[:-1]


def _matches(flat: list[str], pattern: str) -> bool:
    wanted = pattern.split(".")
    return len(flat) >= len(wanted) and all(w in ("*", f) for w, f in zip(wanted, flat))


def block_rule(slug: str | None, secret_fields: Iterable[str] = (), everything_named: bool = True) -> Rule:
    """Secret paths inside a block's data.  `everything_named` also hides any key named like a credential
    (for plans: hiding one value too many costs nothing there, a saved plan re-reads it from the manifest)."""
    fields = tuple(secret_fields) + SECRET_FIELDS.get(slug or "", ())

    def rule(path: Path) -> bool:
        flat = _flat(path)
        if not flat:
            return False
        if under_env(path) or any(_matches(flat, f) for f in fields):
            return True
        if settings_rule(path):
            return True
        return everything_named and credential_like(flat[-1]) and not flat[-1].startswith("_")
    return rule


def overrides_rule(path: Path) -> bool:
    """Secret paths inside `infra_overrides`: every `env` value."""
    return under_env(path)


def settings_rule(path: Path) -> bool:
    """Credential-like keys under `settings` (a remote-file-system block's filesystem options): the server keeps
    them in plain text, since the block schema does not list them as secret."""
    flat = _flat(path)
    return "settings" in flat[:-1] and credential_like(flat[-1])


def redact(value: Any, rule: Rule, path: Path = (), found: dict[Path, Any] | None = None,
           mask: str = SENSITIVE) -> Any:
    """A copy of value with every secret replaced by mask; the secrets go into `found` by path."""
    if path and value is not None and rule(path):
        if found is not None:
            found[path] = value
        return mask
    if isinstance(value, dict):
        return {k: redact(v, rule, path + (k,), found, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, rule, path + (i,), found, mask) for i, v in enumerate(value)]
    return value


def secrets_of(value: Any, rule: Rule, path: Path = ()) -> dict[Path, Any]:
    found: dict[Path, Any] = {}
    redact(value, rule, path, found)
    return found


def change_rule(field: str) -> Rule | None:
    """The rule for a plan change's dotted field (`infra_overrides.env.TOKEN`), or None for fields without secrets."""
    return overrides_rule if field.split(".", 1)[0] == "infra_overrides" else None


def redact_change(field: str, before: Any, after: Any) -> tuple[Any, Any, bool]:
    """(before, after, sensitive) as a plan may show them."""
    rule = change_rule(field)
    if rule is None:
        return before, after, False
    at = tuple(field.split(".")[1:])
    old, new = redact(before, rule, at), redact(after, rule, at)
    return old, new, (old, new) != (before, after) or SENSITIVE in (before, after)


def digest(salt: str, path: Path, value: Any) -> str:
    """A slow, salted digest of one secret (a saved plan is a CI artifact: it must not let one guess the value)."""
    blob = json.dumps([list(path), value], sort_keys=True, default=str).encode()
    return "pbkdf2-sha256:" + hashlib.pbkdf2_hmac("sha256", blob, salt.encode(), 20_000).hex()


def path_key(path: Path) -> str:
    return json.dumps(list(path))


def path_of(key: str) -> Path:
    return tuple(json.loads(key))


def dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


def put(target: Any, path: Path, value: Any) -> bool:
    """Set target[path] = value in place; False when the path is not there."""
    for part in path[:-1]:
        try:
            target = target[part]
        except (KeyError, IndexError, TypeError):
            return False
    try:
        if isinstance(target, dict) and path[-1] not in target:
            return False
        target[path[-1]] = value
    except (IndexError, TypeError):
        return False
    return True


def seal(desired: dict[str, Any]) -> tuple[dict[str, Any], dict[Path, Any]]:
    """A desired deployment's JSON (engine Desired.to_json) with its secrets masked, and the secrets by path
    (`("fields", "infra_overrides", "env", "TOKEN")`, `("storage", "data", "aws_secret_access_key")`)."""
    out = dict(desired)
    found: dict[Path, Any] = {}
    fields = desired.get("fields")
    if isinstance(fields, dict) and "infra_overrides" in fields:
        at = ("fields", "infra_overrides")
        out["fields"] = {**fields, "infra_overrides": redact(fields["infra_overrides"],
                                                             lambda p: overrides_rule(p[2:]), at, found)}
    for key in ("infrastructure", "storage"):
        block = desired.get(key)
        if isinstance(block, dict) and isinstance(block.get("data"), dict):
            rule = block_rule(block.get("slug"))
            out[key] = {**block, "data": redact(block["data"], lambda p, rule=rule: rule(p[2:]), (key, "data"), found)}
    return out, found
