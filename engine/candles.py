"""Candles: open, high, low, close, volume and trade count per time bucket, from trades.

Pure: trades come in with their own timestamps (µs since the epoch, UTC); buckets are
aligned to UTC multiples of the interval. Only buckets that had trades exist. Each
interval keeps its newest `KEEP` candles, so memory is bounded whatever the history.
Trades normally arrive in time order, but two shards stamp their orders with their own
clocks, so a trade may belong to a bucket before the newest one: it is merged there
(close follows trade order, as the tape does).
"""

from __future__ import annotations

from bisect import bisect_left

INTERVALS: dict[str, int] = {"1m": 60_000_000, "5m": 300_000_000, "1h": 3_600_000_000, "1d": 86_400_000_000}
KEEP = 1000  # candles kept per interval: the most a candles query may ask for
OPEN_TIME, OPEN, HIGH, LOW, CLOSE, VOLUME, COUNT = range(7)


class CandleSeries:
    """One asset's candles for every interval: lists of `[open_time, open, high, low, close,
    volume, trade_count]` rows (ticks, lots, µs), oldest first."""

    __slots__ = ("series",)

    def __init__(self) -> None:
        self.series: dict[str, list[list[int]]] = {name: [] for name in INTERVALS}

    def add(self, price: int, quantity: int, timestamp: int) -> None:
        """Count one trade into the bucket of its timestamp in every interval."""
        for name, width in INTERVALS.items():
            rows = self.series[name]
            open_time = timestamp - timestamp % width
            if rows and rows[-1][OPEN_TIME] == open_time:
                row = rows[-1]
            elif not rows or rows[-1][OPEN_TIME] < open_time:
                rows.append([open_time, price, price, price, price, 0, 0])
                if len(rows) > KEEP:
                    del rows[0]
                row = rows[-1]
            else:
                position = bisect_left(rows, open_time, key=lambda candle: candle[OPEN_TIME])
                if position < len(rows) and rows[position][OPEN_TIME] == open_time:
                    row = rows[position]
                elif position == 0 and len(rows) >= KEEP:
                    continue  # older than everything kept
                else:
                    rows.insert(position, row := [open_time, price, price, price, price, 0, 0])
                    if len(rows) > KEEP:
                        del rows[0]
            if price > row[HIGH]:
                row[HIGH] = price
            if price < row[LOW]:
                row[LOW] = price
            row[CLOSE] = price
            row[VOLUME] += quantity
            row[COUNT] += 1

    def latest(self, interval: str, limit: int) -> list[list[int]]:
        """Return copies of the newest `limit` candles of an interval, oldest first."""
        return [list(row) for row in self.series[interval][-limit:]]

    def to_state(self) -> dict:
        return {name: [list(row) for row in rows] for name, rows in self.series.items()}

    @classmethod
    def from_state(cls, state: dict) -> CandleSeries:
        candles = cls()
        for name, rows in state.items():
            if name in candles.series:
                candles.series[name] = [list(row) for row in rows][-KEEP:]
        return candles
