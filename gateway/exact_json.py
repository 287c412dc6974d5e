"""Exact JSON numbers: request bodies keep decimals as Decimal, never float.

"100.1" and 100.1 then mean the same exact value, and NaN or Infinity
literals are refused as invalid JSON (422), as API.md asks. A route may also
have a direct path (gateway/direct.py), tried before FastAPI's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

from fastapi import Request
from fastapi.routing import APIRoute

from gateway.direct import direct_path_of


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number here")


class ExactJSONRequest(Request):
    async def json(self):
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
            except (ValueError, RecursionError) as error:
                if isinstance(error, json.JSONDecodeError):
                    raise
                raise json.JSONDecodeError(str(error) or "the body is nested too deeply", "", 0) from None
        return self._json


class ExactJSONRoute(APIRoute):
    """A route whose JSON body keeps decimal numbers exact."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        direct = direct_path_of(self.endpoint)

        async def exact_handler(request: Request):
            exact = ExactJSONRequest(request.scope, request.receive)
            if direct is not None:
                response = await direct(exact)
                if response is not None:
                    return response
            return await handler(exact)

        return exact_handler
