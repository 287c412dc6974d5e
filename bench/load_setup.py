"""Shared helpers of the HTTP load tools (`locustfile.py`, `http_bench.py`).

- the machine's conditions (CPU model, cores),
- starting and stopping the real service as a subprocess on a temp data dir,
- creating a trading population over HTTP (assets, users with API keys, deposits),
- realistic random orders: limit buys and sells around a mid so they cross, some market orders.

Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psutil

from bench.machine import cpu_model
from bench.processes import service_processes

REPOSITORY = Path(__file__).resolve().parent.parent

# Every benchmark asset trades on these rules: prices in cents, quantities in hundredths.
TICK = Decimal("0.01")
LOT = Decimal("0.01")
MID = Decimal("100.00")
SPREAD_TICKS = 50          # limit prices are uniform in mid ± 0.50, so buys and sells cross often
MAX_LOTS = 100             # quantities 0.01 .. 1.00
USD_PER_USER = "100000000"  # enough that holds never run out in a bounded run
ASSET_PER_USER = "1000000"


def conditions() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release()}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_admin_token(data_dir: str | os.PathLike | None = None) -> str | None:
    """The admin token: $ORDER_SERVICE_ADMIN_TOKEN, else <data dir>/admin_token (as `make run` writes it)."""
    token = os.environ.get("ORDER_SERVICE_ADMIN_TOKEN")
    if token:
        return token
    directory = Path(data_dir or os.environ.get("ORDER_SERVICE_DATA_DIR") or REPOSITORY / "data")
    path = directory / "admin_token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


# ---- the service as a subprocess ---------------------------------------------------------------

@dataclass
class ServiceProcess:
    """The real service on a free port and its own data directory, fsync on, in its own session."""

    root: Path
    sync: bool = True
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: f"admin-{secrets.token_hex(16)}")
    process: subprocess.Popen | None = None
    source: Path | None = None  # another checkout of the project to run instead of this one (a baseline)
    settings: dict[str, str] = field(default_factory=dict)  # more ORDER_SERVICE_* settings

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "service.log"

    def start(self, deadline: float = 120.0) -> float:
        """Start the service and wait for `/health/ready`; return the seconds it took."""
        import httpx

        env = {key: value for key, value in os.environ.items()
               if not key.startswith("ORDER_SERVICE_") and key not in ("RAY_ADDRESS",)}
        env.update({"ORDER_SERVICE_HOST": "127.0.0.1", "ORDER_SERVICE_PORT": str(self.port),
                    "ORDER_SERVICE_DATA_DIR": str(self.data_dir), "ORDER_SERVICE_ADMIN_TOKEN": self.admin_token,
                    "ORDER_SERVICE_SYNC": "true" if self.sync else "false", "PYTHONUNBUFFERED": "1"})
        env.update(self.settings)
        # The checkout to run (this one unless a baseline's): its packages shadow the venv's editable
        # install, which may point at another checkout, in the gateway and in Ray's workers.
        env["PYTHONPATH"] = str(self.source or REPOSITORY)
        command = [sys.executable, "-m", "gateway", "serve"]
        self.root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the service exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if client.get("/health/ready").status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                if time.monotonic() - started > deadline:
                    raise RuntimeError(f"the service was not ready within {deadline}s:\n{self.log_tail()}")
                time.sleep(0.2)

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self, deadline: float = 60.0) -> int | None:
        """SIGTERM (the service flushes its journals and stops its Ray); SIGKILL what is left after `deadline`."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)
            # Ray workers of this run that left the group carry our data dir in their environment.
            for process in service_processes(self.data_dir):
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    pass
            return self.process.returncode


# ---- population ----------------------------------------------------------------------------------

@dataclass
class Population:
    assets: list[str]
    users: list[tuple[str, str]]  # (username, api_key)


def asset_body(asset_id: str) -> dict:
    return {"asset_id": asset_id, "name": f"Bench {asset_id}", "tick_size": str(TICK), "lot_size": str(LOT)}


async def create_population(base_url: str, admin_token: str, *, user_count: int, assets: list[str],
                            prefix: str | None = None, concurrency: int = 32) -> Population:
    """Create the assets (an existing one is fine), `user_count` users, and fund each with USD and every asset."""
    import httpx

    prefix = prefix or f"b{secrets.token_hex(3)}"
    headers = {"Authorization": f"Bearer {admin_token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60.0) as client:
        for asset_id in assets:
            answer = await client.post("/api/v1/admin/assets", json=asset_body(asset_id))
            if answer.status_code not in (201, 409):
                raise RuntimeError(f"creating asset {asset_id}: {answer.status_code} {answer.text}")
        gate = asyncio.Semaphore(concurrency)

        async def make_user(index: int) -> tuple[str, str]:
            username = f"{prefix}_u{index:05d}"
            async with gate:
                answer = await client.post("/api/v1/admin/users", json={"username": username})
                if answer.status_code != 201:
                    raise RuntimeError(f"creating user {username}: {answer.status_code} {answer.text}")
                api_key = answer.json()["data"]["api_key"]
                for asset_id, amount in [("USD", USD_PER_USER), *((a, ASSET_PER_USER) for a in assets)]:
                    answer = await client.post("/api/v1/admin/deposits",
                                               json={"username": username, "asset_id": asset_id, "amount": amount})
                    if answer.status_code != 201:
                        raise RuntimeError(f"deposit for {username}: {answer.status_code} {answer.text}")
            return username, api_key

        users = await asyncio.gather(*(make_user(index) for index in range(user_count)))
    return Population(assets=list(assets), users=list(users))


# ---- orders --------------------------------------------------------------------------------------

def random_limit_price(rng: random.Random, mid: Decimal = MID) -> str:
    return str(mid + TICK * rng.randint(-SPREAD_TICKS, SPREAD_TICKS))


def random_quantity(rng: random.Random, max_lots: int = MAX_LOTS) -> str:
    return str(LOT * rng.randint(1, max_lots))


def random_order(rng: random.Random, asset_id: str, market_share: float = 0.1, mid: Decimal = MID) -> dict:
    """A limit buy or sell around `mid` (so they cross and settle), or now and then a small market order."""
    if rng.random() < market_share:
        return {"asset_id": asset_id, "order_type": rng.choice(("market_buy", "market_sell")),
                "quantity": random_quantity(rng, 10)}
    side = rng.choice(("limit_buy", "limit_sell"))
    return {"asset_id": asset_id, "order_type": side, "quantity": random_quantity(rng),
            "price": random_limit_price(rng, mid)}
