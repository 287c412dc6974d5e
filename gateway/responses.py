"""The success and error envelope of API.md, encoded with orjson."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson
from fastapi.responses import Response


def utc_now_iso() -> str:
    return iso_from_micros(time.time_ns() // 1000)


@lru_cache(maxsize=4)
def _second_text(seconds: int) -> str:
    """"YYYY-MM-DDTHH:MM:SS" of an epoch second: most timestamps in one answer share one."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def iso_from_micros(micros: int) -> str:
    """Render microseconds since the epoch as ISO-8601 UTC, always with six decimals."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_second_text(seconds)}.{fraction:06d}Z"


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
