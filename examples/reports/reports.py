"""Build a small sales report for one region.

Reads `sales.csv` (bundled next to this file), keeps the rows of `region`
from the last `days` days of data, and applies any extra keyword arguments as
exact-match column filters (e.g. `channel="online"`, `product="widget"`).
Totals per product are logged and written as JSON into the directory named by
the REPORTS_BUCKET environment variable (a local directory standing in for an
object-store bucket; defaults to the system temp dir). Nothing goes over the
network.
"""
import csv
import json
import os
import tempfile
from datetime import date, timedelta
from pathlib import Path

from prefect import flow, get_run_logger, task

DATA = Path(__file__).with_name("sales.csv")


@task
def select_rows(region: str, days: int, filters: dict) -> tuple[list[dict], str, str]:
    with DATA.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows and filters:
        unknown = set(filters) - set(rows[0])
        if unknown:
            raise ValueError(f"unknown filter column(s): {sorted(unknown)}")
    last = max(date.fromisoformat(r["date"]) for r in rows)
    first = last - timedelta(days=days - 1)
    picked = [
        r
        for r in rows
        if r["region"] == region
        and first <= date.fromisoformat(r["date"]) <= last
        and all(r[col] == str(val) for col, val in filters.items())
    ]
    return picked, first.isoformat(), last.isoformat()


@task
def totals_by_product(rows: list[dict]) -> dict[str, dict]:
    totals: dict[str, dict] = {}
    for r in rows:
        t = totals.setdefault(r["product"], {"units": 0, "revenue": 0.0})
        t["units"] += int(r["units"])
        t["revenue"] = round(t["revenue"] + int(r["units"]) * float(r["unit_price"]), 2)
    return dict(sorted(totals.items()))


@task
def publish(report: dict) -> Path:
    bucket = Path(os.environ.get("REPORTS_BUCKET") or tempfile.gettempdir())
    bucket.mkdir(parents=True, exist_ok=True)
    target = bucket / f"sales-{report['region']}-{report['last']}.json"
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return target


@flow(name="Regional Sales Report")
def build_report(region: str = "emea", *, days: int = 7, **kwargs):
    logger = get_run_logger()
    rows, first, last = select_rows(region, days, kwargs)
    totals = totals_by_product(rows)
    report = {
        "region": region,
        "first": first,
        "last": last,
        "filters": kwargs,
        "rows": len(rows),
        "products": totals,
        "revenue": round(sum(t["revenue"] for t in totals.values()), 2),
    }
    for product, t in totals.items():
        logger.info("%s %s: %d units, %.2f revenue", region, product, t["units"], t["revenue"])
    logger.info("%s %s..%s filters=%s: %.2f total", region, first, last, kwargs, report["revenue"])
    logger.info("report written to %s", publish(report))
    return report


if __name__ == "__main__":
    build_report("emea", days=7, channel="online")
