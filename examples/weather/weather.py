"""Summarise daily weather observations per station.

Reads `observations.csv` (bundled next to this file: station, date, min/max
temperature in degrees Celsius, precipitation in millimetres) and logs, per
station, the temperature range, the mean daily maximum and total rainfall.
"""
import csv
from pathlib import Path
from statistics import mean
from typing import Optional

from prefect import flow, get_run_logger, task

DATA = Path(__file__).with_name("observations.csv")


@task
def load_observations(stations: Optional[list[str]]) -> list[dict]:
    with DATA.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if stations:
        wanted = {s.upper() for s in stations}
        rows = [r for r in rows if r["station"] in wanted]
    return rows


@task
def summarise(rows: list[dict], wet_day_mm: float) -> dict[str, dict]:
    by_station: dict[str, list[dict]] = {}
    for row in rows:
        by_station.setdefault(row["station"], []).append(row)
    summary = {}
    for station, obs in sorted(by_station.items()):
        lows = [float(r["tmin_c"]) for r in obs]
        highs = [float(r["tmax_c"]) for r in obs]
        rain = [float(r["precip_mm"]) for r in obs]
        summary[station] = {
            "days": len(obs),
            "first": min(r["date"] for r in obs),
            "last": max(r["date"] for r in obs),
            "min_c": min(lows),
            "max_c": max(highs),
            "mean_max_c": round(mean(highs), 1),
            "precip_mm": round(sum(rain), 1),
            "wet_days": sum(1 for mm in rain if mm >= wet_day_mm),
        }
    return summary


@flow(name="Weather Summary")
def weather_summary(stations: Optional[list[str]] = None, wet_day_mm: float = 1.0):
    logger = get_run_logger()
    rows = load_observations(stations)
    if not rows:
        logger.warning("no observations for stations %s", stations)
        return {}
    summary = summarise(rows, wet_day_mm)
    for station, s in summary.items():
        logger.info(
            "%s %s..%s (%d days): %.1f..%.1f C, mean max %.1f C, %.1f mm rain on %d wet days",
            station, s["first"], s["last"], s["days"], s["min_c"], s["max_c"],
            s["mean_max_c"], s["precip_mm"], s["wet_days"],
        )
    return summary


if __name__ == "__main__":
    weather_summary()
