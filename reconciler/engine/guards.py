"""Checks that stop a run before its first write.  Each returns or raises; none writes."""
from __future__ import annotations

from ..errors import ManifestError, ManifestErrors, Refused
from .desired import Desired
from .live import Live
from .plans import Plan


# The block types of Prefect's integrations (Prefect 2): the module that registers them, and the package it is in.
COLLECTIONS = {
    "prefect_aws": ("prefect-aws", ("s3-bucket", "aws-credentials", "aws-secret", "ecs-task", "minio-credentials",
                                    "lambda-function")),
    "prefect_gcp": ("prefect-gcp", ("gcs-bucket", "gcp-credentials", "gcpsecret", "cloud-run-job",
                                    "vertex-ai-custom-training-job", "bigquery-warehouse")),
    "prefect_azure": ("prefect-azure", ("azure-blob-storage-container", "azure-blob-storage-credentials",
                                        "azure-container-instance-job", "azure-container-instance-credentials",
                                        "azure-cosmos-db-credentials", "azureml-credentials")),
    "prefect_github": ("prefect-github", ("github-repository", "github-credentials")),
    "prefect_gitlab": ("prefect-gitlab", ("gitlab-repository", "gitlab-credentials")),
    "prefect_bitbucket": ("prefect-bitbucket", ("bitbucket-repository", "bitbucket-credentials")),
    "prefect_kubernetes": ("prefect-kubernetes", ("kubernetes-credentials",)),
    "prefect_docker": ("prefect-docker", ("docker-host", "docker-registry-credentials")),
}
CORE = {"prefect.filesystems": ("local-file-system", "remote-file-system", "s3", "gcs", "azure", "smb", "github"),
        "prefect.infrastructure": ("process", "docker-container", "kubernetes-job"),
        "prefect.blocks.system": ("json", "secret", "string", "date-time")}


def how_to_register(slug: str) -> str:
    """What to run so that the server knows block type `slug`."""
    for module, (package, slugs) in COLLECTIONS.items():
        if slug in slugs:
            return f"register it: pip install {package} && prefect block register -m {module}"
    for module, slugs in CORE.items():
        if slug in slugs:
            return (f"it is one of Prefect's own (a Prefect 2 server registers them when it starts): "
                    f"prefect block register -m {module}")
    return ("register it with `prefect block register -m MODULE` (MODULE: the Python module of the collection "
            "that defines it), or correct the block's type")


def server_objects_exist(desired: list[Desired], live: Live, creatable: frozenset[str] = frozenset()) -> None:
    """Every server object a manifest needs exists: block types, named blocks, work pools. All are reported at
    once, one line each naming the manifest's file and line, before anything is written."""
    errors = _blocks(desired, live) + _work_pools(desired, live, creatable)
    if errors:
        raise ManifestErrors(sorted(errors, key=lambda e: (e.file, e.line)))


def _blocks(desired: list[Desired], live: Live) -> list[ManifestError]:
    errors = []
    for want in desired:
        for key, ref in (("infrastructure", want.infrastructure), ("storage", want.storage)):
            if ref is None:
                continue
            where = (want.manifest or want.identity, want.lines.get(key, 1), 1, key)
            if ref.slug in live.unregistered:
                errors.append(ManifestError(*where, f"block type {ref.slug!r} is not registered on the server at "
                                                    f"{live.api_url}; {how_to_register(ref.slug)}"))
            elif ref.name is not None and (ref.slug, ref.name) not in live.named:
                errors.append(ManifestError(*where, f"block {ref.slug}/{ref.name} not found on the server at "
                                                    f"{live.api_url}; create it there or correct `_block_document_name`"))
    return errors


def _work_pools(desired: list[Desired], live: Live, creatable: frozenset[str]) -> list[ManifestError]:
    errors = []
    for want in desired:
        pool = want.fields.get("work_pool_name")
        if pool is not None and pool not in live.work_pools and pool not in creatable:
            errors.append(ManifestError(
                want.manifest or want.identity, want.lines.get("work_pool_name", 1), 1, "work_pool_name",
                f"work pool {pool!r} not found on the server at {live.api_url}; create it there or correct the name"))
    return errors


def delete_limit(plan: Plan, max_deletes: int, allow_deletes: bool) -> None:
    deletes = plan.deletes
    if len(deletes) > max_deletes and not allow_deletes:
        names = ", ".join(a.identity for a in deletes[:5]) + (", …" if len(deletes) > 5 else "")
        raise Refused(f"refusing to delete {len(deletes)} deployments (more than --max-deletes {max_deletes}): "
                      f"{names}; pass --allow-deletes to proceed")


def empty_desired(plan: Plan, declared: int, allow_empty: bool) -> None:
    if declared == 0 and plan.inventory_before and not allow_empty:
        raise Refused(f"no manifests found, but source {plan.source!r} manages {len(plan.inventory_before)} "
                      "deployments; applying would delete them all. Check the path, or pass --allow-empty")


def conflicts(plan: Plan) -> None:
    """A deployment another source owns fails the run, unless the user opted to leave such deployments alone."""
    if plan.conflicts and not plan.leave_conflicts:
        raise Refused(conflict_message(plan))


def conflict_message(plan: Plan) -> str:
    shown = ", ".join(f"{c.identity} (source {c.owner!r})" for c in plan.conflicts[:5])
    more = ", …" if len(plan.conflicts) > 5 else ""
    n = len(plan.conflicts)
    return (f"{n} deployment{'s' if n != 1 else ''} declared here belong{'s' if n == 1 else ''} to another source: "
            f"{shown}{more}; nothing was changed. Remove {'them' if n != 1 else 'it'} from this source, or pass "
            "--allow-conflicts (allow_conflicts: true in reconcile.yaml) to leave them alone")
