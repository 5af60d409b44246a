"""Benchmark: a bundle of 1,000 files with one changed.

Prints what an upload sends (files and bytes) on the first apply and after one
file changed, and the time of the plan-side bundle work (walk, hash, read the
marker, compute the delta) on the unchanged tree with a cold hash cache versus
a warm one, as a ratio measured in the same run (machines here are shared and
noisy: compare the ratio, not the seconds).  With RECONCILE_BENCH_API_URL set,
it also times a whole `reconciler.plan()` against that Prefect server, cold
versus warm.

    python benchmarks/bundle_upload.py [--files 1000] [--size 65536] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from reconciler.bundles.bundle import HashCache, collect
from reconciler.bundles.locations import read_marker
from reconciler.bundles.storage import Target
from reconciler.bundles.transfer import upload
from reconciler.bundles.uploads import Location, plan_uploads


def make_tree(root: Path, files: int, size: int) -> None:
    for i in range(files):
        sub = root / f"pkg{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"module_{i:04d}.py").write_bytes((f"# file {i}\n".encode() * (size // 10 + 1))[:size])
    (root / "flow.py").write_text("def main():\n    return 1\n")


def plan_side(repo: Path, target: Target, cache_file: Path) -> tuple[float, int, object]:
    started = time.perf_counter()
    cache = HashCache(cache_file)
    bundle = collect(repo, repo, cache, display="bench")
    cache.save()
    marker = read_marker(target)
    uploads = plan_uploads([Location("bench/flow", "local-file-system/bench", "", target.url, bundle, marker)])
    return time.perf_counter() - started, cache.reads, (bundle, uploads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo, store, cache_file = Path(tmp) / "repo", Path(tmp) / "storage", Path(tmp) / "cache" / "hashes.json"
        make_tree(repo, args.files, args.size)
        target = Target("local-file-system/bench", "file", {}, str(store))

        _, _, (bundle, uploads) = plan_side(repo, target, cache_file)
        sent = upload(target, bundle, uploads[0])
        print(f"bundle: {len(bundle.files)} files, {bundle.size / 1e6:.1f} MB")
        print(f"first apply: uploaded {len(uploads[0].write)} files, {sent} bytes (+ marker)")

        changed = repo / "pkg07" / "module_0007.py"
        changed.write_bytes(changed.read_bytes() + b"# edited\n")
        _, reads, (bundle, uploads) = plan_side(repo, target, cache_file)
        sent = upload(target, bundle, uploads[0])
        print(f"after changing one file: plan re-hashed {reads} file(s); uploaded {len(uploads[0].write)} "
              f"file(s), {sent} bytes (+ marker), removed {len(uploads[0].remove)}")

        cold, warm = [], []
        for _ in range(args.repeat):
            if cache_file.exists():
                cache_file.unlink()
            seconds, reads, (_, pending) = plan_side(repo, target, cache_file)
            assert reads == len(bundle.files) and not pending
            cold.append(seconds)
            seconds, reads, (_, pending) = plan_side(repo, target, cache_file)
            assert reads == 0 and not pending
            warm.append(seconds)
        c, w = statistics.median(cold), statistics.median(warm)
        print(f"plan-side bundle work on the unchanged tree (median of {args.repeat}): "
              f"cold cache {c:.3f}s, warm cache {w:.3f}s; warm/cold = {w / c:.2f} ({c / w:.1f}x faster)")

        api = os.environ.get("RECONCILE_BENCH_API_URL")
        if api:
            full_plan(api, repo, store, cache_file, args.repeat)


def full_plan(api: str, repo: Path, store: Path, cache_file: Path, repeat: int) -> None:
    """A whole `reconcile plan` (server reads included) with cold vs warm cache, when a server is given."""
    import httpx

    import reconciler
    from reconciler.bundles import collect as bundles
    from reconciler.manifests.discover import repository_root

    http = httpx.Client(base_url=api.rstrip("/") + "/")
    slug = "local-file-system"
    block_type = http.get(f"block_types/slug/{slug}").json()
    schema = http.post("block_schemas/filter", json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}).json()[0]
    name = f"bench-{os.getpid()}"
    doc = http.post("block_documents/", json={"name": name, "data": {"basepath": str(store)}, "block_type_id": block_type["id"],
                                              "block_schema_id": schema["id"]}).json()
    (repo / "bench-deployment.yaml").write_text(
        f"name: bench\nflow_name: bench-{os.getpid()}\nentrypoint: flow.py:main\npath: ''\n"
        f"storage:\n  basepath: {store}\n  _block_document_name: {name}\n  _block_type_slug: {slug}\n")
    real_cache = repository_root(repo) / bundles.CACHE
    try:
        cold, warm = [], []
        for _ in range(repeat):
            if real_cache.exists():
                real_cache.unlink()
            started = time.perf_counter()
            reconciler.plan(repo, api_url=api, source=f"bench-{os.getpid()}")
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            reconciler.plan(repo, api_url=api, source=f"bench-{os.getpid()}")
            warm.append(time.perf_counter() - started)
        c, w = statistics.median(cold), statistics.median(warm)
        print(f"whole `plan` against {api} (median of {repeat}): cold cache {c:.3f}s, warm cache {w:.3f}s; "
              f"warm/cold = {w / c:.2f}")
    finally:
        http.delete(f"block_documents/{doc['id']}")


if __name__ == "__main__":
    main()
