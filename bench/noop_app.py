"""Baselines for `http_bench.py`.

`app`: a no-op FastAPI endpoint `POST /api/v1/orders` that does the HTTP work
the service's own route does before it reaches the actors — the same
`OrderCreateRequest` validation (through the same exact-decimal JSON route
class), a bearer header that must be present — and answers a small 201
envelope. It is served with the service's uvicorn settings: uvloop,
httptools, one process, access log off.

`--raw`: an HTTP sink (uvloop + httptools parser, a fixed 201 answer, no
framework) that costs the server almost nothing, so a run against it
measures the load generator's own ceiling.

    .venv/bin/python bench/noop_app.py --port 8100 [--raw]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
from fastapi import Depends, FastAPI  # noqa: E402
from fastapi.responses import Response  # noqa: E402
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402

from gateway.exact_json import ExactJSONRoute  # noqa: E402
from gateway.models.orders import OrderCreateRequest  # noqa: E402

app = FastAPI(title="no-op order endpoint")
_bearer = HTTPBearer(auto_error=False)


async def _caller(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    if credentials is None or not credentials.credentials:
        return ""
    return credentials.credentials


def _envelope(status: int, success: bool, message: str, data) -> Response:
    body = {"success": success, "message": message, "data": data,
            "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


app.router.route_class = ExactJSONRoute


@app.post("/api/v1/orders", status_code=201)
async def create_order(body: OrderCreateRequest, token: Annotated[str, Depends(_caller)]):
    if not token:
        return _envelope(401, False, "A bearer token is required", None)
    return _envelope(201, True, "Order placed", {"order_id": "1", "asset_id": body.asset_id,
                                                 "order_type": body.order_type.value, "status": "confirmed"})


# ---- the raw sink: the generator's ceiling --------------------------------------------------------

_RAW_BODY = b'{"success":true,"message":"Order placed","data":{"order_id":"1"},"timestamp":"1970-01-01T00:00:00Z"}'
_RAW_ANSWER = (b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: "
               + str(len(_RAW_BODY)).encode() + b"\r\n\r\n" + _RAW_BODY)


class _Sink(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        import httptools

        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:
            self.transport.close()

    def on_message_complete(self) -> None:
        self.transport.write(_RAW_ANSWER)


async def _serve_raw(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Sink, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--raw", action="store_true", help="serve the raw HTTP sink instead of FastAPI")
    arguments = parser.parse_args()
    if arguments.raw:
        import uvloop

        uvloop.run(_serve_raw(arguments.port))
        return
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=arguments.port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools", workers=1)


if __name__ == "__main__":
    main()
