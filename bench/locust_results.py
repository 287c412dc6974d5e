"""What locust wrote for a headless run with `--csv PREFIX --csv-full-history`, read back.

`PREFIX_stats.csv` holds the whole run per endpoint (counts, failures, response-time percentiles,
which locust rounds to two significant digits above 100 ms); `PREFIX_stats_history.csv` gets a row
per endpoint and one `Aggregated` row about every second, with cumulative request and failure
counts, from which throughput over any interval follows.
"""

from __future__ import annotations

import csv
from pathlib import Path

ORDER_ENDPOINTS = ("POST /orders (limit)", "POST /orders (market)")


def read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError:
        return []


def number(value: str | None) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def endpoint_stats(prefix: Path) -> list[dict]:
    """Per endpoint and overall: requests, failures, percentiles (ms) from locust's final stats."""
    rows = []
    for row in read_csv(Path(f"{prefix}_stats.csv")):
        name = row["Name"] if row["Name"] != "Aggregated" else "all requests"
        rows.append({"name": name, "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                     "requests_per_s": number(row["Requests/s"]),
                     **{key: number(row.get(column)) for key, column in
                        (("p50_ms", "50%"), ("p90_ms", "90%"), ("p99_ms", "99%"), ("p99_9_ms", "99.9%"),
                         ("max_ms", "Max Response Time"), ("mean_ms", "Average Response Time"))}})
    return rows


def history_counts(prefix: Path) -> dict[str, list[tuple[int, int, int]]]:
    """{endpoint or 'all requests': [(unix second, total requests, total failures), ...]} from the history."""
    series: dict[str, list[tuple[int, int, int]]] = {}
    for row in read_csv(Path(f"{prefix}_stats_history.csv")):
        name = "all requests" if row["Name"] == "Aggregated" else row["Name"]
        series.setdefault(name, []).append(
            (int(row["Timestamp"]), int(row["Total Request Count"]), int(row["Total Failure Count"])))
    return series


def count_at(series: list[tuple[int, int, int]], moment: float) -> int:
    """The cumulative request count of a history series at a wall-clock moment (0 before its first row)."""
    count = 0
    for second, total, _ in series:
        if second > moment:
            break
        count = total
    return count


def throughput_intervals(series: dict, interval: float, load_start: float) -> list[dict]:
    """Requests/s, order requests/s and failures in each interval since the load started."""
    aggregate = series.get("all requests", [])
    if not aggregate:
        return []
    last = aggregate[-1][0]
    rows = []
    start = load_start
    while start < last:
        end = min(start + interval, last)
        requests = count_at(aggregate, end) - count_at(aggregate, start)
        orders = sum(count_at(series.get(name, []), end) - count_at(series.get(name, []), start)
                     for name in ORDER_ENDPOINTS)
        failures = (max((f for s, _, f in aggregate if s <= end), default=0)
                    - max((f for s, _, f in aggregate if s <= start), default=0))
        if end - start >= 1:
            rows.append({"from_s": round(start - load_start), "to_s": round(end - load_start),
                         "requests_per_s": requests / (end - start), "orders_per_s": orders / (end - start),
                         "failures": failures})
        start = end
    return rows


def locust_refusals(log_path: Path) -> str:
    """The locustfile's own line on expected refusals counted as successes."""
    try:
        for line in log_path.read_text(errors="replace").splitlines():
            if "expected refusals counted as successes" in line:
                return line.split("successes:", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
