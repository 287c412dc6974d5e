"""The servers the HTTP benchmarks measure besides the service: the no-op app, the raw sink, and
matching-engine 0.1.1's own gateway; started on a free port, waited for, and stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.load_setup import LOT, TICK

HERE = Path(__file__).resolve().parent


def start_noop(port: int, raw: bool, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, str(HERE / "noop_app.py"), "--port", str(port)] + (["--raw"] if raw else [])
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    import httpx

    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/orders", timeout=2.0,
                                headers={"Authorization": "Bearer probe"},
                                json={"asset_id": "X", "order_type": "limit_buy", "quantity": "1", "price": "1"})
            if answer.status_code == 201:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{command} did not answer within 30s")
        time.sleep(0.1)


PEER_PYTHON = HERE / ".peers" / "venv312" / "bin" / "python"


def start_peer(port: int, data_dir: Path, assets: list[str], log_path: Path) -> subprocess.Popen:
    """matching-engine 0.1.1's own gateway (`python -m matching_engine serve`, Python 3.12), fsync on."""
    if not PEER_PYTHON.exists():
        raise SystemExit(f"{PEER_PYTHON} is missing: run `bash bench/peers/setup.sh` first")
    environment = dict(os.environ, ME_DATA_DIR=str(data_dir), ME_FSYNC="1",
                       ME_MARKETS=",".join(f"{asset}:{TICK}:{LOT}" for asset in assets))
    command = [str(PEER_PYTHON), "-m", "matching_engine", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   env=environment, start_new_session=True)
    import httpx

    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2.0).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{command} did not answer within 60s")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
