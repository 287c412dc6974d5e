"""The WebSocket subscribers of `bench/stream_bench.py`'s `subs` phases, in processes of their own.

`Subscribers` starts `--subscriber-processes` copies of this file; each reads its share of the plan (which
asset each socket watches, and whether it never reads) from stdin, opens and subscribes its sockets, prints
READY, reads frames until STOP on stdin (noting the arrival time of each trade frame), drains the
never-reading sockets to see how the server closed them, writes its counts and arrivals, and prints DONE.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_setup import ServiceProcess  # noqa: E402

THIS = Path(__file__).resolve()
SLOW_RECEIVE_BUFFER = 4096
CONNECT_CONCURRENCY = 25


async def _subscribe(spec: dict) -> None:
    """Open this process's share of the sockets, subscribe each to book and trades of its asset, print READY,
    read until STOP on stdin (the slow ones read nothing), then drain the slow ones to see how they were
    closed, close the rest, write the trade frames' arrival times and the counts, and print DONE."""
    import socket

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    loop = asyncio.get_running_loop()
    url, host, port = spec["url"], spec["host"], spec["port"]
    assets = spec["assets"]
    clock = time.perf_counter
    # Trade frames seen by reading sockets: asset index, trade number, arrival time (parallel arrays).
    seen_asset, seen_trade, seen_time = array("b"), array("q"), array("d")
    counts = {"frames": 0, "trade_frames": 0, "book_frames": 0, "reading_closed": {}, "slow_closed": {},
              "connect_failures": 0}
    sockets: list = [None] * len(spec["plan"])
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(index: int, asset_id: str, slow: bool):
        async with gate:
            options = {"max_size": None, "open_timeout": 60, "ping_interval": None}
            if slow:
                raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RECEIVE_BUFFER)
                raw.setblocking(False)
                await loop.sock_connect(raw, (host, port))
                options.update(sock=raw, max_queue=1)
            websocket = await connect(url, **options)
            for channel in ("book", "trades"):
                await websocket.send(json.dumps({"op": "subscribe", "channel": channel, "asset_id": asset_id}))
            answers = 0
            while answers < 2:
                message = await asyncio.wait_for(websocket.recv(), 60)
                if message.startswith('{"op"'):
                    if '"success":true' not in message:
                        raise RuntimeError(f"subscribe refused: {message}")
                    answers += 1
            sockets[index] = websocket

    def note_close(kind: str, error: BaseException | None) -> None:
        if isinstance(error, ConnectionClosed):
            key = str(error.rcvd.code) if error.rcvd is not None else "no close frame"
        else:
            key = type(error).__name__ if error is not None else "open"
        counts[kind][key] = counts[kind].get(key, 0) + 1

    async def read(websocket, asset_index: int) -> None:
        try:
            async for message in websocket:
                now = clock()
                counts["frames"] += 1
                at = message.find('"trade_id":"')
                if at >= 0:
                    counts["trade_frames"] += 1
                    end = message.find('"', at + 12)
                    seen_asset.append(asset_index)
                    seen_trade.append(int(message[message.rfind("-", at, end) + 1:end]))
                    seen_time.append(now)
                else:
                    counts["book_frames"] += 1
            if not stopping:  # the server closed it cleanly, while the phase ran
                counts["reading_closed"]["1000"] = counts["reading_closed"].get("1000", 0) + 1
        except ConnectionClosed as error:
            if not stopping:
                note_close("reading_closed", error)
        except Exception as error:  # a reset
            if not stopping:
                note_close("reading_closed", error)

    async def drain(websocket) -> None:
        """A never-reading socket at the end: read what is left until the server's close, or quiet."""
        try:
            while True:
                await asyncio.wait_for(websocket.recv(), 3.0)
        except asyncio.TimeoutError:
            note_close("slow_closed", None)  # still open: never closed by the server
        except Exception as error:
            note_close("slow_closed", error)

    stopping = False
    plan = spec["plan"]
    opened = await asyncio.gather(*(open_one(index, asset_id, slow) for index, (asset_id, slow) in enumerate(plan)),
                                  return_exceptions=True)
    failures = [error for error in opened if isinstance(error, BaseException)]
    counts["connect_failures"] = len(failures)
    readers = [loop.create_task(read(sockets[index], assets.index(asset_id)))
               for index, (asset_id, slow) in enumerate(plan) if not slow and sockets[index] is not None]
    sys.stdout.write(f"READY {len(plan) - len(failures)} {failures[:1]!r}\n")
    sys.stdout.flush()
    await loop.run_in_executor(None, sys.stdin.readline)  # STOP
    stopped_at = clock()
    await asyncio.gather(*(drain(sockets[index]) for index, (_, slow) in enumerate(plan)
                           if slow and sockets[index] is not None))
    stopping = True
    await asyncio.gather(*(sockets[index].close() for index, (_, slow) in enumerate(plan)
                           if not slow and sockets[index] is not None), return_exceptions=True)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.gather(*(sockets[index].close() for index, (_, slow) in enumerate(plan)
                           if slow and sockets[index] is not None), return_exceptions=True)
    base = Path(spec["result_path"])
    for suffix, values in (("asset", seen_asset), ("trade", seen_trade), ("time", seen_time)):
        with open(f"{base}.{suffix}", "wb") as handle:
            values.tofile(handle)
    counts["records"] = len(seen_time)
    counts["stopped_at"] = stopped_at
    base.write_text(json.dumps(counts))
    sys.stdout.write("DONE\n")
    sys.stdout.flush()


def _subscribers_main() -> None:
    import uvloop

    spec = json.loads(sys.stdin.readline())
    uvloop.run(_subscribe(spec))


class Subscribers:
    """The subscriber processes of one `subs` phase."""

    def __init__(self, service: ServiceProcess, assets: list[str], count: int, slow: int, processes: int,
                 root: Path) -> None:
        self.processes: list[tuple[subprocess.Popen, Path, int]] = []
        # The slow ones spread over processes and assets: every `count // slow`-th socket.
        slow_indices = {round(index * count / slow) for index in range(slow)} if slow else set()
        plans: list[list] = [[] for _ in range(processes)]
        for index in range(count):
            plans[index % processes].append([assets[index % len(assets)], index in slow_indices])
        url = service.base_url.replace("http://", "ws://") + "/api/v1/ws"
        for number, plan in enumerate(plans):
            result_path = root / f"subscribers-{number}-{time.monotonic_ns()}.json"
            process = subprocess.Popen([sys.executable, str(THIS)], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=open(root / "subscribers.log", "ab"))
            spec = {"url": url, "host": "127.0.0.1", "port": service.port, "assets": assets, "plan": plan,
                    "result_path": str(result_path)}
            process.stdin.write((json.dumps(spec) + "\n").encode())
            process.stdin.flush()
            self.processes.append((process, result_path, sum(1 for _, is_slow in plan if is_slow)))
        self.connected = 0
        for process, _, _ in self.processes:
            line = process.stdout.readline().decode()
            if not line.startswith("READY"):
                self.stop()
                raise RuntimeError(f"a subscriber process failed: {line!r}; see {root / 'subscribers.log'}")
            self.connected += int(line.split()[1])
        self.slow = sum(slow for _, _, slow in self.processes)

    def pids(self) -> list[int]:
        return [process.pid for process, _, _ in self.processes]

    def stop(self) -> dict:
        """Stop every process; their counts summed, and the trade frames' arrivals (asset, trade, time)."""
        for process, _, _ in self.processes:
            if process.poll() is None:
                process.stdin.write(b"STOP\n")
                process.stdin.flush()
        totals: dict = {"frames": 0, "trade_frames": 0, "book_frames": 0, "reading_closed": {}, "slow_closed": {},
                        "connect_failures": 0, "arrivals": [], "stopped_at": 0.0}
        for process, path, _ in self.processes:
            try:
                process.stdout.readline()
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if not path.exists():
                continue
            counts = json.loads(path.read_text())
            for key in ("frames", "trade_frames", "book_frames", "connect_failures"):
                totals[key] += counts[key]
            for key in ("reading_closed", "slow_closed"):
                for code, number in counts[key].items():
                    totals[key][code] = totals[key].get(code, 0) + number
            totals["stopped_at"] = max(totals["stopped_at"], counts["stopped_at"])
            columns = []
            for suffix, kind in (("asset", "b"), ("trade", "q"), ("time", "d")):
                values = array(kind)
                file = Path(f"{path}.{suffix}")
                with open(file, "rb") as handle:
                    values.frombytes(handle.read())
                file.unlink()
                columns.append(values)
            totals["arrivals"].append(columns)
            path.unlink()
        return totals


if __name__ == "__main__":
    _subscribers_main()
