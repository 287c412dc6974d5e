"""`order-service`: serve the HTTP API; set up and inspect the actor tier on a cluster (gateway/cluster.py);
verify or replay a stopped service's journals offline."""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import secrets
import signal
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

from gateway import cluster
from gateway.settings import Settings

log = logging.getLogger("order_service")

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# An idle keep-alive connection stays open this long. Uvicorn's default, 5 s, is also the idle expiry
# of common clients' pools (httpx, aiohttp's 15 s aside): a client reusing a connection just as the
# server closes it gets a reset on a request the server never saw (seen as httpx.ReadError while
# creating users in bench/http_bench.py). A server should outwait its clients and load balancers
# (nginx keeps 75 s; AWS load balancers 60 s); a stop still closes idle connections at once.
KEEP_ALIVE_SECONDS = 75
STREAM_MAX_FRAME_BYTES = 64 * 1024


class AlreadyRunning(RuntimeError):
    pass


def lock_data_dir(data_dir: Path) -> int:
    """Hold an exclusive lock on the data directory for this process's life."""
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(data_dir / "service.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
        os.close(descriptor)
        raise AlreadyRunning(
            f"another order-service (pid {holder or 'unknown'}) is already running on data directory "
            f"{data_dir}; stop it first or choose another ORDER_SERVICE_DATA_DIR") from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor


def admin_token(settings: Settings) -> str:
    """Return the admin token: the environment's, else the one kept in the data directory."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.data_dir / "admin_token"
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as token_file:
            token_file.write(secrets.token_urlsafe(32))
        log.info("generated an admin token; it is in %s (mode 0600)", path)
    else:
        log.info("the admin token is in %s", path)
    return path.read_text().strip()


def prepare_metrics_dir(data_dir: Path) -> Path:
    """Point PROMETHEUS_MULTIPROC_DIR at an emptied directory: the operator's, else DATA_DIR/metrics.

    Every gateway process of this service (they inherit the variable) writes its series
    to its own files there, and a scrape answered by any of them sums them all. Call it
    with the data directory locked (the files of the run before would add to this run's
    counters) and before prometheus_client is imported: it picks its storage at import."""
    path = Path(os.environ.get(METRICS_DIR_ENV) or data_dir / "metrics").resolve()
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[METRICS_DIR_ENV] = str(path)
    return path


@contextmanager
def metrics_dir_hidden():
    """Leave PROMETHEUS_MULTIPROC_DIR out of the environment meanwhile (while Ray starts its
    processes): Ray's own processes use prometheus_client too, and their series are not ours."""
    path = os.environ.pop(METRICS_DIR_ENV, None)
    try:
        yield
    finally:
        if path is not None:
            os.environ[METRICS_DIR_ENV] = path


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen on the service's port once, for every gateway process to accept on."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


def _run_http(runtime, settings: Settings, listener: socket.socket) -> int:
    """Serve the app on the listening socket until a stop signal; 0 after a clean stop."""
    import uvicorn

    from gateway.app import create_app  # imports prometheus_client: after prepare_metrics_dir
    from gateway.ws_protocol import StreamProtocol

    # Uvicorn re-raises the signal that stopped it once it has shut down cleanly; Ray's
    # driver handler would turn that into exit status 15. A clean shutdown exits 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    server = uvicorn.Server(uvicorn.Config(
        create_app(runtime), host=settings.host, port=settings.port, log_level="info", access_log=False,
        loop="uvloop", http="httptools", timeout_graceful_shutdown=10, timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # API.md "Streams": frames over 64 KiB close the socket (1009); a ping every 20 s. The
        # sans-I/O protocol, which lets the streams write frames made once for every socket
        # (gateway/ws_protocol.py), and no per-message compression, which would make them differ.
        ws=StreamProtocol, ws_per_message_deflate=False,
        ws_max_size=STREAM_MAX_FRAME_BYTES, ws_ping_interval=20.0, ws_ping_timeout=20.0))
    server.run(sockets=[listener])
    return 0 if server.started else 3


def serve() -> int:
    """Recover from the journals and serve the HTTP API with ORDER_SERVICE_WORKERS processes until SIGTERM."""
    import ray

    from actors.config import check_layout
    from actors.remote import LayoutMismatch, gcs_address, local_labels, record_in_cluster, \
        recorded_cluster_layout, start_ray

    settings = Settings.from_environment()
    try:
        lock_data_dir(settings.data_dir)
        config = settings.service_config()
        if settings.ray_address is None:
            check_layout(config)
        listener = bind(settings.host, settings.port)
    except (AlreadyRunning, ValueError, OSError) as error:
        print(f"order-service: {error}", file=sys.stderr)
        return 2
    token = admin_token(settings)
    prepare_metrics_dir(settings.data_dir)
    from gateway.runtime import Runtime
    from gateway.workers import GatewayWorkers

    # A local Ray's actors inherit this environment and open their journals under it
    # (actors.remote.node_config): absolute, whatever directory their workers run in.
    os.environ["ORDER_SERVICE_DATA_DIR"] = str(settings.data_dir)
    log.info("data directory %s, journal fsync %s, %s, %d gateway processes", settings.data_dir,
             "on" if settings.sync else "off",
             f"joining Ray at {settings.ray_address}" if settings.ray_address else "starting a local Ray",
             settings.workers)
    with metrics_dir_hidden():
        start_ray(settings.data_dir, settings.namespace,
                  labels=None if settings.ray_address else local_labels(config))
    try:
        if settings.ray_address:
            config = settings.service_config(recorded_cluster_layout(settings.namespace))
            check_layout(config)
        record_in_cluster(config, token)
    except (ValueError, LayoutMismatch) as error:
        print(f"order-service: {error}", file=sys.stderr)
        ray.shutdown()
        return 2
    workers = None
    if settings.workers > 1:
        environment = dict(os.environ, RAY_ADDRESS=settings.ray_address or gcs_address(),
                           ORDER_SERVICE_ADMIN_TOKEN=token, ORDER_SERVICE_SHARDS=str(config.shard_count),
                           ORDER_SERVICE_BOOK_ACTORS=str(config.book_actor_count))
        workers = GatewayWorkers(settings.workers - 1, listener.fileno(), environment)
        workers.start()
    runtime = Runtime(settings, token, owns_ray=settings.ray_address is None, config=config, workers=workers)
    return _run_http(runtime, settings, listener)


def gateway_worker(listen_fd: int) -> int:
    """Serve as one more gateway process of a `serve`, on the socket it passed (see gateway/workers.py)."""
    from actors.remote import start_ray
    from gateway.runtime import Runtime
    from gateway.workers import stop_when_orphaned

    settings = Settings.from_environment()
    stop_when_orphaned()
    start_ray(settings.data_dir, settings.namespace)  # joins RAY_ADDRESS, which serve sets
    runtime = Runtime(settings, settings.admin_token, owns_ray=False, serve_when_ready=True)
    return _run_http(runtime, settings, socket.socket(fileno=listen_fd))


def verify(data_dir: Path) -> int:
    """Replay every journal offline, check the invariants, print a summary; 1 on the first problem."""
    import json

    from actors.offline import verify as verify_offline
    from journal import JournalError

    from actors.config import recorded_layout

    data_dir = data_dir.resolve()
    if not recorded_layout(data_dir):
        print(f"order-service: {data_dir} holds no service data (no layout.json)", file=sys.stderr)
        return 2
    try:
        lock_data_dir(data_dir)
    except AlreadyRunning as error:
        print(f"order-service: {error}", file=sys.stderr)
        return 2
    try:
        report = verify_offline(data_dir)
    except JournalError as error:
        print(f"BROKEN: {error}", file=sys.stderr)
        return 1
    print(json.dumps({key: value for key, value in report.items() if key != "problems"}, indent=2))
    if report["problems"]:
        print(f"BROKEN: {report['problems'][0]} ({len(report['problems'])} problems)", file=sys.stderr)
        return 1
    print("OK: checksums, contiguity and the invariants of DESIGN.md hold", file=sys.stderr)
    return 0


def parse_moment(text: str) -> int:
    """An ISO 8601 time (UTC unless it says otherwise) as microseconds since the epoch."""
    from datetime import datetime

    from gateway.times import micros

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-25T02:13:00Z)") from None
    return micros(moment)


def replay(data_dir: Path, stream: str | None, until: int | None, at: int | None, output: Path | None) -> int:
    """Rebuild one stream as of a sequence, or the streams as of a moment, and write it as JSON."""
    import json

    from actors.offline import replay_at, replay_stream
    from journal import JournalError

    data_dir = data_dir.resolve()
    try:
        lock_data_dir(data_dir)
        if at is not None:
            result = replay_at(data_dir, at, stream)
            what = ", ".join(f"{entry['stream']} at {entry['sequence']}" for entry in result["streams"])
        else:
            result = replay_stream(data_dir, stream, until)
            what = f"{stream} at {result['sequence']}"
    except (AlreadyRunning, ValueError, OSError, JournalError) as error:
        print(f"order-service: {error}", file=sys.stderr)
        return 1 if isinstance(error, JournalError) else 2
    text = json.dumps(result, indent=2, default=list)
    if output is None:
        print(text)
    else:
        output.write_text(text)
        print(f"state as of sequence ({what}) written to {output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="order-service", description="Order matching service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the HTTP API (configured by ORDER_SERVICE_* variables)")
    worker_parser = commands.add_parser(
        "gateway-worker", help="one more gateway process of a `serve` (serve starts these; not for direct use)")
    worker_parser.add_argument("--fd", type=int, required=True, help="the listening socket serve passed")
    cluster.add_commands(commands)
    verify_parser = commands.add_parser(
        "verify", help="replay every journal of a stopped service offline and check its invariants")
    verify_parser.add_argument("--data-dir", type=Path, default=Path("./data"))
    replay_parser = commands.add_parser(
        "replay", help="rebuild a stopped service's state as of a sequence of one stream (--until) "
                       "or as of a moment (--at) and print it as JSON")
    replay_parser.add_argument("--data-dir", type=Path, default=Path("./data"))
    replay_parser.add_argument("--stream", default=None,
                               help="registry, shard-N or book-N (required with --until; with --at, default: all)")
    when = replay_parser.add_mutually_exclusive_group()
    when.add_argument("--until", type=int, default=None, help="last sequence of --stream to apply (default: all)")
    when.add_argument("--at", type=parse_moment, default=None, metavar="TIME",
                      help="ISO 8601 time, UTC unless given (e.g. 2026-11-25T02:13:00Z): each stream up to its "
                           "last record written at or before it")
    replay_parser.add_argument("--output", type=Path, default=None, help="write the JSON here instead of stdout")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if arguments.command in ("serve", "gateway-worker") else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if arguments.command == "serve":
        return serve()
    if arguments.command == "gateway-worker":
        return gateway_worker(arguments.fd)
    if (status := cluster.run(arguments)) is not None:
        return status
    if arguments.command == "verify":
        return verify(arguments.data_dir)
    if arguments.command == "replay":
        if arguments.stream is None and arguments.at is None:
            replay_parser.error("--stream is required unless --at is given")
        return replay(arguments.data_dir, arguments.stream, arguments.until, arguments.at, arguments.output)
    return 1


if __name__ == "__main__":
    sys.exit(main())
