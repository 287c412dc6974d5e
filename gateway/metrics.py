"""Metrics for `GET /metrics`: the gateway's own series and the actors' figures, in Prometheus text.

Two sources, two ways:

- The gateway's series (HTTP requests and durations, order outcomes, actor calls as
  this caller saw them) are counted on the hot path in plain Python (a dict look-up
  and a few adds per request, on the event loop's thread) and moved into
  prometheus_client's metrics by `flush`: at every scrape, and every second in the
  background. prometheus_client's own `inc`/`observe` cost ~1-2 µs each in
  multiprocess mode (a lock and an mmap write); deferring them keeps a request's
  cost at a fraction of that.
- Multiprocess mode: `order-service serve` (gateway/cli.py) points
  PROMETHEUS_MULTIPROC_DIR at an emptied directory before anything imports
  prometheus_client, so each gateway process on the machine writes its series to
  its own files there, and a scrape answered by any of them sums every process's
  counters and histograms (`MultiProcessCollector`). What another process counted
  reaches the files within a second (its background flush).
- The actors' figures (journal commits and batch sizes, queue depths, memory, resting
  orders) are kept by each actor in plain integers and fetched at scrape time by one
  `metrics()` call per actor (`ActorCollector`): once per scrape whichever process
  answers it, never per order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from bisect import bisect_left
from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

from actors.client import CALL_SECONDS_BOUNDS, CallTimes

log = logging.getLogger(__name__)

PREFIX = "order_service_"
FLUSH_EVERY_SECONDS = 1.0
ACTOR_TIMEOUT_SECONDS = 5.0  # an actor slower than this to give its figures is left out of the scrape
UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404): never the raw path
# Upper bounds (seconds) of the request-duration buckets; the last bucket is +Inf.
REQUEST_SECONDS_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Any other method is labelled OTHER, so a client cannot mint label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ORDER_ROUTE = ("/api/v1/orders", "POST")  # its 409 and 422 answers are order outcomes
# Multiprocess mode keeps each process's values in files it maps into memory, one per kind of metric
# (named as prometheus_client names them). A new series writes into the next page of the map, and a page
# the file system cannot back (a full disk: the metrics directory is under the data directory) is a
# SIGBUS that ends the gateway process, not an error it could catch. So each file is allocated before
# prometheus_client maps it, with room for every series a gateway makes (about 300 KiB of them; 2 MiB a file).
METRIC_FILE_KINDS = ("counter", "histogram", "gauge_max")
METRIC_FILE_BYTES = 2 << 20


class _Series:
    """One (route, method)'s requests since the last flush, and its pre-resolved children."""

    __slots__ = ("labels", "statuses", "seconds_sum", "seconds_counts", "duration_child", "status_children",
                 "order_route")

    def __init__(self, route: str, method: str, durations: Histogram) -> None:
        self.labels = (route, method)
        self.statuses: dict[int, int] = {}
        self.seconds_sum = 0.0
        self.seconds_counts = [0] * (len(REQUEST_SECONDS_BOUNDS) + 1)
        self.duration_child = durations.labels(route, method)
        self.status_children: dict[int, Any] = {}
        self.order_route = self.labels == ORDER_ROUTE


def reserve_metric_files(directory: str, pid: int) -> None:
    """Allocate this process's multiprocess files (see METRIC_FILE_BYTES) before prometheus_client
    maps them; it keeps a file's size as its capacity. Without room on the disk, a file is left to
    prometheus_client and the gateway serves on, at the risk of its next new series."""
    for kind in METRIC_FILE_KINDS:
        path = os.path.join(directory, f"{kind}_{pid}.db")
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            log.warning("could not create the metrics file %s: %s", path, error)
            continue
        try:
            if os.fstat(descriptor).st_size == 0:  # new, or left empty by a failed allocation
                os.posix_fallocate(descriptor, 0, METRIC_FILE_BYTES)
        except OSError as error:
            os.ftruncate(descriptor, 0)
            log.warning("no room for the metrics file %s (%s): a new series may end this process if "
                        "the disk is still full then", path, error)
        finally:
            os.close(descriptor)


class GatewayMetrics:
    """This gateway process's series, counted cheaply and flushed into prometheus_client."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.multiprocess = getattr(values.ValueClass, "_multiprocess", False)
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if self.multiprocess and directory:
            reserve_metric_files(directory, os.getpid())
        self.call_times = CallTimes() if enabled else None
        self._series: dict[tuple[int, str], _Series] = {}  # (id of the route, method) -> series
        self._orders: dict[str, int] = {}  # outcome -> orders since the last flush
        self._flusher: asyncio.Task | None = None
        self.requests = Counter(PREFIX + "http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=None)
        self.request_seconds = Histogram(PREFIX + "http_request_duration_seconds",
                                         "Time from a request's arrival to its answer's last byte",
                                         ["route", "method"], buckets=REQUEST_SECONDS_BOUNDS, registry=None)
        self.orders = Counter(PREFIX + "orders", "Orders answered, by the order's status, or rejected "
                              "(422) or duplicate (409); each order of a batch once", ["outcome"], registry=None)
        self.actor_call_seconds = Histogram(PREFIX + "actor_call_duration_seconds",
                                            "Actor calls as the gateway awaited them", ["actor", "method"],
                                            buckets=CALL_SECONDS_BOUNDS, registry=None)
        self.recovery_seconds = Gauge(PREFIX + "recovery_duration_seconds",
                                      "Seconds from start until the actors had recovered and the gateway was "
                                      "ready (the slowest gateway process)", registry=None,
                                      multiprocess_mode="max")
        self._collectors = (self.requests, self.request_seconds, self.orders, self.actor_call_seconds,
                            self.recovery_seconds)

    # ---- the hot path (the event loop's thread) ------------------------

    def series(self, route: Any, method: str) -> _Series:
        """The series of a matched route object (None: no route matched), cached per route and method."""
        if method not in METHODS:
            method = "OTHER"
        key = (id(route), method)
        found = self._series.get(key)
        if found is None:
            template = getattr(route, "path", None) or UNMATCHED
            found = self._series[key] = _Series(template, method, self.request_seconds)
        return found

    def count_order(self, outcome: str) -> None:
        """Count one answered order: its status, or `rejected` / `duplicate`."""
        if self.enabled:
            self._orders[outcome] = self._orders.get(outcome, 0) + 1

    def count_batch(self, results: list[dict]) -> None:
        """Count each order of a batch's results once."""
        if not self.enabled:
            return
        for result in results:
            if result["success"]:
                self.count_order(result["data"]["status"])
            else:
                code = result["error"]["code"]
                self.count_order("duplicate" if code == "DUPLICATE_CLIENT_ORDER_ID" else "rejected")

    def set_recovery(self, seconds: float) -> None:
        self.recovery_seconds.set(seconds)

    # ---- flushing and scraping -----------------------------------------

    def flush(self) -> None:
        """Move what was counted since the last flush into prometheus_client's metrics."""
        for series in self._series.values():
            if series.statuses:
                for status, count in series.statuses.items():
                    child = series.status_children.get(status)
                    if child is None:
                        child = series.status_children[status] = self.requests.labels(*series.labels, str(status))
                    child.inc(count)
                series.statuses.clear()
                _add_to_histogram(series.duration_child, series.seconds_sum, series.seconds_counts)
                series.seconds_sum = 0.0
                series.seconds_counts = [0] * len(series.seconds_counts)
        orders, self._orders = self._orders, {}
        for outcome, count in orders.items():
            self.orders.labels(outcome).inc(count)
        if self.call_times is not None:
            for (actor, method), entry in self.call_times.drain().items():
                _add_to_histogram(self.actor_call_seconds.labels(actor, method), entry[0], entry[1:])

    def start_flushing(self) -> None:
        """Flush every second in the background, so that scrapes answered by other processes see ours."""
        if self.enabled and self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_SECONDS)
            try:
                self.flush()
            except Exception:  # a full disk under the multiprocess files, say: keep serving
                log.exception("could not flush the metrics")

    def stop_flushing(self) -> None:
        """Stop the background flush and flush what is left."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        with contextlib.suppress(Exception):
            self.flush()

    async def scrape(self, client) -> bytes:
        """The whole exposition: every gateway process's series, and each actor's figures once."""
        self.flush()
        figures = await client.actor_metrics(ACTOR_TIMEOUT_SECONDS)
        registry = CollectorRegistry(auto_describe=False)
        if self.multiprocess:
            MultiProcessCollector(registry)
        else:
            for collector in self._collectors:
                registry.register(collector)
        registry.register(ActorCollector(figures, [name for name, _ in client.actors()]))
        return generate_latest(registry)


def _add_to_histogram(child: Histogram, seconds_sum: float, counts: list[int]) -> None:
    """Add pre-bucketed observations to a histogram child (per-bucket, not cumulative, counts).

    prometheus_client offers only `observe`, one value at a time; its per-bucket values are
    what `observe` increments (prometheus-client is pinned in pyproject.toml)."""
    if not any(counts):
        return
    child._sum.inc(seconds_sum)
    for bucket, count in zip(child._buckets, counts):
        if count:
            bucket.inc(count)


class HttpMetrics:
    """Count every HTTP answer by route template, method and status, and time it.

    A plain ASGI middleware (Starlette's BaseHTTPMiddleware would cost a task group and
    memory streams on every request). The route is the one the router matched
    (`scope["route"]`), so the label is its template, never the raw path."""

    def __init__(self, app, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = perf_counter()
        status = 500  # what the server answers for an exception that escapes the app

        async def send_noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            elapsed = perf_counter() - started
            series = self.metrics.series(scope.get("route"), scope["method"])
            statuses = series.statuses
            statuses[status] = statuses.get(status, 0) + 1
            series.seconds_sum += elapsed
            series.seconds_counts[bisect_left(REQUEST_SECONDS_BOUNDS, elapsed)] += 1
            if series.order_route and (status == 422 or status == 409):
                # Refusals of a single order, whether the route or FastAPI's validation refused it;
                # the route itself counts the orders it answers with a status.
                self.metrics.count_order("rejected" if status == 422 else "duplicate")


class ActorCollector:
    """The actors' own figures of one scrape, as Prometheus metric families."""

    def __init__(self, figures: list[dict], actors: list[str]) -> None:
        self.figures = figures
        self.actors = actors

    def collect(self):
        answered = {figures["actor"] for figures in self.figures}
        up = GaugeMetricFamily(PREFIX + "actor_up", "Whether the actor gave its figures to this scrape",
                               labels=["actor"])
        for actor in self.actors:
            up.add_metric([actor], 1.0 if actor in answered else 0.0)
        yield up
        memory = GaugeMetricFamily(PREFIX + "actor_memory_bytes",
                                   "The actor process's anonymous resident memory (RssAnon)", labels=["actor"])
        commit_seconds = HistogramMetricFamily(PREFIX + "journal_commit_duration_seconds",
                                               "Time of one group commit: the write transaction and its fsync",
                                               labels=["stream"])
        batch_events = HistogramMetricFamily(PREFIX + "journal_batch_events", "Events written by one group commit",
                                             labels=["stream"])
        journal_queue = GaugeMetricFamily(PREFIX + "journal_queued_submissions",
                                          "Submissions waiting for their group commit", labels=["stream"])
        queues = GaugeMetricFamily(PREFIX + "actor_queue_depth", "Work an actor holds that waits on another",
                                   labels=["actor", "queue"])
        open_orders = GaugeMetricFamily(PREFIX + "open_orders", "Orders resting on the book", labels=["asset_id"])
        waiting_stops = GaugeMetricFamily(PREFIX + "waiting_stops", "Stop orders waiting for their trigger",
                                          labels=["asset_id"])
        sent = CounterMetricFamily(PREFIX + "orders_sent_to_book",
                                   "Orders a shard sent to their books: while their holds were journaled (early) "
                                   "or once durable (after_hold), since the shard started", labels=["actor", "path"])
        for figures in self.figures:
            actor = figures["actor"]
            if figures.get("memory_bytes") is not None:
                memory.add_metric([actor], figures["memory_bytes"])
            journal = figures["journal"]
            commit_seconds.add_metric([actor], *_histogram(journal["commit_seconds"]))
            batch_events.add_metric([actor], *_histogram(journal["batch_events"]))
            journal_queue.add_metric([actor], journal["queued"])
            for queue, depth in figures.get("queues", {}).items():
                queues.add_metric([actor, queue], depth)
            for asset_id, count in figures.get("open_orders", {}).items():
                open_orders.add_metric([asset_id], count)
            for asset_id, count in figures.get("waiting_stops", {}).items():
                waiting_stops.add_metric([asset_id], count)
            for path, count in figures.get("orders_sent", {}).items():
                sent.add_metric([actor, path], count)
        yield from (memory, commit_seconds, batch_events, journal_queue, queues, open_orders, waiting_stops, sent)


def _histogram(figures: dict) -> tuple[list[tuple[str, float]], float]:
    """Per-bucket counts into the cumulative (le, count) pairs of the exposition, and the sum."""
    buckets, total = [], 0
    for bound, count in zip([*figures["bounds"], float("inf")], figures["counts"]):
        total += count
        buckets.append((floatToGoString(bound), total))
    return buckets, figures["sum"]
