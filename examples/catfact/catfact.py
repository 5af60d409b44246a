"""Log a few cat facts from an offline snapshot.

The flow is shaped like one that calls a public cat-fact API, but it never
touches the network: it reads `facts.json`, a small snapshot bundled next to
this file, and uses `url` only to check that the snapshot is the one asked for.
"""
import json
from pathlib import Path

from prefect import flow, get_run_logger, task

SNAPSHOT = Path(__file__).with_name("facts.json")


@task
def load_snapshot(url: str) -> list[str]:
    logger = get_run_logger()
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    if snapshot["source"].rstrip("/") != url.rstrip("/"):
        logger.warning(
            "no snapshot for %s; using the bundled one for %s", url, snapshot["source"]
        )
    return [item["fact"] for item in snapshot["data"]]


@flow(name="Cat Facts")
def catfacts_flow(url: str, n: int = 3):
    logger = get_run_logger()
    facts = load_snapshot(url)
    picked = facts[: max(n, 0)]
    for number, fact in enumerate(picked, start=1):
        logger.info("fact %d/%d: %s", number, len(picked), fact)
    logger.info(
        "%d of %d facts, %d characters on average",
        len(picked),
        len(facts),
        sum(map(len, picked)) // max(len(picked), 1),
    )
    return picked


if __name__ == "__main__":
    catfacts_flow("https://catfact.ninja/facts")
