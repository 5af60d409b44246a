"""Storage blocks → an fsspec filesystem and a root path (the code's upload target).

Covers Prefect 2's `local-file-system`, `remote-file-system` (any fsspec URL),
`s3`, `gcs`, `azure` and `smb` blocks.  `github` and `gitlab-repository` are
read-only: the code comes from the repository, nothing is uploaded.  Protocol
libraries are extras; a missing one is a one-line error naming the extra.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ReconcileError
from ..manifests.confine import confine

READ_ONLY = {"github", "gitlab-repository", "git-repository"}
EXTRA_FOR = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
             "abfss": "azure", "adl": "azure", "smb": "smb", "sftp": "sftp"}
PACKAGE_FOR = {"s3": "s3fs", "gcs": "gcsfs", "azure": "adlfs", "smb": "smbprotocol", "sftp": "paramiko"}


@dataclass(frozen=True)
class Target:
    """Where a bundle goes: a filesystem protocol, its options, and the directory in it."""

    block: str                 # `slug/name` (or `slug/anonymous:…`), for messages
    protocol: str
    options: dict[str, Any]
    root: str                  # the directory the bundle's files go under (no protocol)

    @property
    def url(self) -> str:
        return self.root if self.protocol in ("file", "local") else f"{self.protocol}://{self.root}"

    def filesystem(self):
        import fsspec

        try:
            return fsspec.filesystem(self.protocol, **self.options)
        except ImportError:
            extra = EXTRA_FOR.get(self.protocol, self.protocol)
            package = PACKAGE_FOR.get(extra, "an fsspec implementation")
            raise ReconcileError(
                f"storage {self.block} uses {self.protocol}:// which needs {package}: "
                f"pip install 'prefect-reconcile[{extra}]'") from None
        except ValueError as exc:
            raise ReconcileError(f"storage {self.block}: {exc}") from None


@dataclass(frozen=True)
class ReadOnly:
    """Code that comes from a git repository block: nothing to upload."""

    block: str
    repository: str
    reference: Optional[str]

    def describe(self) -> str:
        return f"{self.repository}@{self.reference or 'default branch'}"


def target(slug: str, block: str, data: dict[str, Any], path: Optional[str]):
    """The upload Target (or ReadOnly) of a storage block's data and a manifest's `path`.

    The manifest's `path` must stay inside the block's root (confine.Escapes otherwise): relative
    without climbing out of it, or (local-file-system, as Prefect allows) absolute inside its basepath.
    """
    sub = (path or "").strip()
    if slug in READ_ONLY:
        confine(".", sub)   # a directory of the repository's checkout: never above it, never absolute
        repo = data.get("repository") or data.get("repository_url") or data.get("url") or "?"
        return ReadOnly(block, str(repo), data.get("reference") or data.get("branch"))
    if slug == "local-file-system":
        base = data.get("basepath")
        if not base:
            raise ReconcileError(f"storage {block} has no basepath; set one to upload code to it")
        import os
        return Target(block, "file", {}, _join(os.path.expanduser(str(base)), sub, local=True))
    if slug == "remote-file-system":
        base = str(data.get("basepath") or "")
        if "://" not in base:
            raise ReconcileError(f"storage {block}: basepath {base!r} is not a URL like s3://bucket/path")
        protocol, rest = base.split("://", 1)
        return Target(block, protocol, dict(data.get("settings") or {}), _join(rest, sub.lstrip("/")))
    if slug == "s3":
        options = _present({"key": data.get("aws_access_key_id"), "secret": data.get("aws_secret_access_key")})
        return Target(block, "s3", options, _join(_bucket(block, data), sub.lstrip("/")))
    if slug == "gcs-bucket":  # prefect-gcp's GcsBucket: bucket + bucket_folder, credentials in a nested block
        creds = data.get("gcp_credentials") or {}
        info = creds.get("service_account_info") if isinstance(creds, dict) else None
        options = _present({"project": creds.get("project") if isinstance(creds, dict) else None})
        if info:
            options["token"] = json.loads(info) if isinstance(info, str) else info
        bucket = _folder(str(data.get("bucket") or ""), str(data.get("bucket_folder") or ""))
        return Target(block, "gcs", options, _join(bucket, sub.lstrip("/")))
    if slug == "s3-bucket":  # prefect-aws's S3Bucket: bucket_name + bucket_folder, nested aws-credentials
        creds = data.get("credentials") or {}
        options = _present({"key": creds.get("aws_access_key_id"), "secret": creds.get("aws_secret_access_key")})
        endpoint = ((creds.get("aws_client_parameters") or {}).get("endpoint_url") if isinstance(creds, dict) else None)
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
        bucket = _folder(str(data.get("bucket_name") or ""), str(data.get("bucket_folder") or ""))
        return Target(block, "s3", options, _join(bucket, sub.lstrip("/")))
    if slug == "gcs":
        info = data.get("service_account_info")
        options: dict[str, Any] = _present({"project": data.get("project")})
        if info:
            options["token"] = json.loads(info) if isinstance(info, str) else info
        return Target(block, "gcs", options, _join(_bucket(block, data), sub.lstrip("/")))
    if slug == "azure":
        options = _present({
            "connection_string": data.get("azure_storage_connection_string"),
            "account_name": data.get("azure_storage_account_name"),
            "account_key": data.get("azure_storage_account_key"),
            "tenant_id": data.get("azure_storage_tenant_id"),
            "client_id": data.get("azure_storage_client_id"),
            "client_secret": data.get("azure_storage_client_secret"),
        })
        bucket = _bucket(block, data)
        if data.get("azure_storage_container"):  # Prefect: az://<container>@<account>…/<bucket_path>
            bucket = f"{data['azure_storage_container']}/{bucket.lstrip('/')}"
        return Target(block, "az", options, _join(bucket, sub.lstrip("/")))
    if slug == "smb":
        options = _present({"host": data.get("smb_host"), "username": data.get("smb_username"),
                            "password": data.get("smb_password"), "port": data.get("smb_port")})
        return Target(block, "smb", options, _join(str(data.get("share_path") or ""), sub.lstrip("/")))
    raise ReconcileError(f"storage {block}: block type {slug!r} is not a storage reconcile can upload to "
                         "(local-file-system, remote-file-system, s3, s3-bucket, gcs, gcs-bucket, azure, smb; github "
                         "and gitlab-repository are read-only); use --skip-upload to reconcile deployments only")


def _bucket(block: str, data: dict[str, Any]) -> str:
    bucket = data.get("bucket_path")
    if not bucket:
        raise ReconcileError(f"storage {block} has no bucket_path")
    return str(bucket)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, "")}


def _folder(bucket: str, folder: str) -> str:
    """A bucket and the block's own folder in it (the block's settings, not a manifest's path)."""
    folder = folder.strip("/")
    return f"{bucket.rstrip('/')}/{folder}" if folder else (bucket.rstrip("/") or "/")


def _join(base: str, sub: str, local: bool = False) -> str:
    """The block's root joined with the manifest's path, which may not leave it (confine.Escapes)."""
    base = base.rstrip("/") or "/"
    if not sub:
        return base
    return confine(base, sub, follow_links=local)
