"""The success and error envelope of API.md, encoded with orjson."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson
from fastapi.responses import Response


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def iso_from_micros(micros: int) -> str:
    """Render microseconds since the epoch as ISO-8601 UTC."""
    return datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def envelope_response(status: int, success: bool, message: str, data: Any, *, error: dict | None = None,
                      headers: dict[str, str] | None = None) -> Response:
    body = {"success": success, "message": message, "data": data, "timestamp": utc_now_iso()}
    if error is not None:
        body["error"] = error
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def ok(data: Any, message: str = "OK", status: int = 200) -> Response:
    """Answer success with `data` in the envelope."""
    return envelope_response(status, True, message, data)


def plain_json(body: Any, status: int = 200) -> Response:
    """Answer JSON without the envelope (the health probes)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
