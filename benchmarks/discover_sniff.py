"""Benchmark: finding manifests by content as well as by name.

A tree of 50 manifests named `*-deployment.yaml`, 10 with other names, and N other YAML files (Kubernetes
objects, CI files, large data files of 2 MB each) that are no manifests.  Times `discover.find` as it is
(each other *.yaml / *.yml file sniffed: its first 8 KB) against a run that matches names only, and the same
for the whole load (find + parse), in the same process (machines here are shared and noisy: compare the ratio, not the seconds).

    python benchmarks/discover_sniff.py [--yaml 2000] [--big 20] [--repeat 7]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from reconciler.manifests import discover
from reconciler.manifests.configmodel import Config

MANIFEST = ("###\n### A complete description of a Prefect Deployment for flow 'f{i}'\n###\nname: d{i}\n"
            "###\n### DO NOT EDIT BELOW THIS LINE\n###\nflow_name: f{i}\nentrypoint: flow.py:main\n")
K8S = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\nspec:\n  replicas: 2\n" + "# pad\n" * 200


def make_tree(root: Path, others: int, big: int) -> None:
    for i in range(50):
        sub = root / f"team{i % 5}" / "deployments"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"d{i}-deployment.yaml").write_text(MANIFEST.format(i=i))
    for i in range(10):
        (root / f"team{i % 5}" / "deployments" / f"prod{i}.yaml").write_text(MANIFEST.format(i=100 + i))
    for i in range(others):
        sub = root / "k8s" / f"app{i % 40}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"object{i}.yaml").write_text(K8S.format(i=i))
    blob = ("- row: " + "x" * 100 + "\n") * (2_000_000 // 108)
    for i in range(big):
        (root / "data").mkdir(exist_ok=True)
        (root / "data" / f"table{i}.yaml").write_text(blob)


def timed(root: Path, repeat: int, names_only: bool, load: bool = False) -> tuple[float, int]:
    runs, found = [], 0
    for _ in range(repeat):
        with mock.patch.object(discover, "_yaml", (lambda name: False) if names_only else discover._yaml):
            started = time.perf_counter()
            found = len(discover.load_all(root, Config()).manifests if load else discover.find(root, Config()))
            runs.append(time.perf_counter() - started)
    return statistics.median(runs), found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--yaml", type=int, default=2000, help="other YAML files (no manifests)")
    parser.add_argument("--big", type=int, default=20, help="2 MB YAML data files")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, args.yaml, args.big)
        timed(root, 1, False)                                      # warm the page cache for both
        by_name, named = timed(root, args.repeat, names_only=True)
        by_content, found = timed(root, args.repeat, names_only=False)
        loaded_by_name, _ = timed(root, args.repeat, names_only=True, load=True)
        loaded, _ = timed(root, args.repeat, names_only=False, load=True)
    print(f"tree: 60 manifests (10 not named *-deployment.yaml), {args.yaml} other YAML files, "
          f"{args.big} YAML files of 2 MB")
    print(f"names only:        {named} found, median {by_name * 1000:.1f} ms")
    print(f"names and content: {found} found, median {by_content * 1000:.1f} ms")
    print(f"ratio (content / names only): {by_content / by_name:.2f}x; "
          f"{(by_content - by_name) / (args.yaml + args.big + 10) * 1e6:.0f} µs per file sniffed")
    print(f"find + parse (load_all): names only {loaded_by_name * 1000:.1f} ms, names and content "
          f"{loaded * 1000:.1f} ms (the extra 10 manifests parsed included): {loaded / loaded_by_name:.2f}x")


if __name__ == "__main__":
    main()
