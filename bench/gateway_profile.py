"""What the gateway alone costs per single-order POST, layer by layer, in one process.

The real `create_app` app is driven in-process through ASGI (no socket, no uvicorn), with the actors
replaced by an object that answers `place_order` at once with a fixed order record: what remains is
exactly the gateway's own Python work on the hot path (middleware, routing, body parsing, validation,
authentication, the order mapping, the answer's rendering). Beside it, for scale: the no-op FastAPI app of
`noop_app.py` and a bare ASGI app. Medians of `--repeats` timed loops of `--count` requests; `--profile`
adds a cProfile of the real app's loop, sorted by own time.

This is a profiling harness, not a test: nothing here proves the service correct.

    .venv/bin/python bench/gateway_profile.py [--count 20000] [--repeats 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from actors.messages import OrderOutcome, OrderView, PlaceOrder  # noqa: E402
from engine import AssetSpec  # noqa: E402

BODY = orjson.dumps({"asset_id": "BN0", "order_type": "limit_buy", "quantity": "0.25", "price": "99.87"})
TOKEN = "k" * 43


class InstantClient:
    """Stands in for the actors: every order is confirmed at once."""

    async def place_order(self, request: PlaceOrder) -> OrderOutcome:
        return OrderOutcome.placed(OrderView(
            257, request.username, request.asset_id, request.order_type, request.time_in_force, request.post_only,
            request.quantity, request.price, request.client_order_id, request.description, 1764036000000000,
            1764036000000000, "confirmed", None, 0, 0, request.quantity * request.price))

    async def authenticate(self, key_hash: str) -> str | None:
        return "trader1"


def real_app():
    from gateway.app import create_app
    from gateway.runtime import Runtime
    from gateway.settings import Settings

    runtime = Runtime(Settings.from_environment({}), admin_token="admin", owns_ray=False)
    runtime.client = InstantClient()
    runtime.ready = True
    runtime.remember_asset(AssetSpec.create("BN0", "0.01", "0.01", "Bench"))
    return create_app(runtime)


def noop_app():
    from bench.noop_app import app

    return app


async def bare_app(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"success":true}'})


def scope_for(path: str = "/api/v1/orders") -> dict:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer " + TOKEN.encode()),
                        (b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]}


async def drive(app, count: int) -> tuple[float, int]:
    """Send `count` requests one after another; return seconds per request and the last status."""
    status = [0]

    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    started = time.perf_counter()
    for _ in range(count):
        await app(scope_for(), receive, send)
    return (time.perf_counter() - started) / count, status[0]


async def main_async(arguments) -> None:
    apps = {"bare ASGI app": bare_app, "no-op FastAPI app (noop_app.py)": noop_app(), "gateway (create_app)": real_app()}
    for name, app in apps.items():
        _, status = await drive(app, 200)  # warm up, and check the answer
        if status not in (200, 201):
            raise SystemExit(f"{name} answered {status}")
    print(f"gateway hot path in-process: {arguments.count} single-order POSTs per loop, {arguments.repeats} loops, "
          f"medians; python {sys.version.split()[0]}")
    results = {}
    for name, app in apps.items():
        runs = [(await drive(app, arguments.count))[0] for _ in range(arguments.repeats)]
        results[name] = statistics.median(runs)
        print(f"  {name:<34} {results[name] * 1e6:8.1f} µs/request")
    gateway = results["gateway (create_app)"]
    print(f"  gateway - no-op FastAPI = {(gateway - results['no-op FastAPI app (noop_app.py)']) * 1e6:.1f} µs/request "
          f"(auth, asset rules, the order mapping, the envelope)")
    if arguments.profile:
        profile = cProfile.Profile()
        profile.enable()
        await drive(apps["gateway (create_app)"], arguments.count)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    arguments = parser.parse_args()
    import uvloop

    uvloop.run(main_async(arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
