"""The printed report of a soak run (`bench/soak.py`), from the result it writes as JSON."""

from __future__ import annotations

MIB = 1024 * 1024


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:7.1f}"


def print_report(result: dict) -> None:
    cond = result["conditions"]
    print(f"\nsoak: {cond['cpu']}, {cond['cores']} cores, python {cond['python']}, kernel {cond['kernel']}; "
          f"load average before {cond['load_before']}, after {cond['load_after']} (other jobs share this machine)")
    print(f"source: {cond['revision']}")
    print(f"service: {cond['shards']} account shards, {cond['book_actors']} book actors, journal fsync "
          f"{'on' if cond['sync'] else 'off'}, local Ray; ready {cond['ready_seconds']:.1f} s after start")
    print(f"load: locust {cond['users']} users (spawn {cond['spawn_rate']}/s), {cond['duration_s']:.0f} s, "
          f"{len(cond['assets'])} assets ({', '.join(cond['assets'])}), pauses 0.05-0.5 s between tasks; "
          f"memory warm-up {cond['warmup_s']:.0f} s")

    print(f"\nthroughput per {cond['interval_s']:.0f} s (from locust's history):")
    print(f"  {'interval':>12} {'req/s':>8} {'orders/s':>9} {'failures':>9}")
    for row in result["throughput"]:
        print(f"  {row['from_s']:>5}-{row['to_s']:<5} s {row['requests_per_s']:8.1f} {row['orders_per_s']:9.1f} "
              f"{row['failures']:9d}")

    print("\nlatency (ms, locust's whole-run figures; locust rounds times above 100 ms to 2 significant digits):")
    print(f"  {'endpoint':<28} {'requests':>9} {'fail':>5} {'req/s':>7} {'p50':>6} {'p90':>6} {'p99':>6} "
          f"{'p99.9':>6} {'max':>7}")
    for row in result["endpoints"]:
        print(f"  {row['name']:<28} {row['requests']:9d} {row['failures']:5d} {row['requests_per_s']:7.1f} "
              f"{row['p50_ms']:6.0f} {row['p90_ms']:6.0f} {row['p99_ms']:6.0f} {row['p99_9_ms']:6.0f} "
              f"{row['max_ms']:7.0f}")
    errors = result["errors"]
    print(f"\nerrors: {errors['failed_requests']} failed requests, {errors['exceptions']} locust exceptions, "
          f"locust exit {errors['locust_exit_code']}; expected refusals counted as successes: {errors['refusals']}")
    for line in errors["failure_kinds"][:10]:
        print(f"  {line}")

    print("\nmemory (MiB; anon = RssAnon, the private memory a leak grows; growth = anon, warm-up -> end):")
    print(f"  {'process':<26} {'pid':>7} {'start rss':>9} {'warm rss':>9} {'end rss':>9} {'start anon':>10} "
          f"{'warm anon':>9} {'end anon':>9} {'growth':>8}  bound")
    for row in result["memory"]["processes"]:
        growth = "-" if row["growth_anon_kib"] is None else f"{row['growth_anon_kib'] / 1024:+8.1f}"
        print(f"  {row['role']:<26} {row['pid']:>7} {mib(row['start_rss_kib']):>9} {mib(row['warm_rss_kib']):>9} "
              f"{mib(row['end_rss_kib']):>9} {mib(row['start_anon_kib']):>10} {mib(row['warm_anon_kib']):>9} "
              f"{mib(row['end_anon_kib']):>9} {growth:>8}  {row['bound']} {'ok' if row['ok'] else 'EXCEEDED'}")
    total = result["memory"]["total"]
    print(f"  {'all processes':<26} {'':>7} {mib(total['start_rss_kib']):>9} {mib(total['warm_rss_kib']):>9} "
          f"{mib(total['end_rss_kib']):>9}")
    for kind, entry in result["memory"]["per_order"].items():
        bound = result["memory"]["bounds"]["bytes_per_order"]
        print(f"  {kind}s: {entry['growth_bytes'] / MIB:+.1f} MiB anon for {entry['orders']} orders placed after "
              f"warm-up = {entry['bytes_per_order']:.0f} bytes/order (bound {bound:.0f}): "
              f"{'ok' if entry['ok'] else 'EXCEEDED'}")
    replayed = result["memory"]["replayed_state"]
    if replayed.get("bytes_per_order"):
        print(f"  for comparison, the shards rebuilt from their journals in a fresh process hold "
              f"{replayed['bytes_per_order']:.0f} bytes/order ({replayed['orders']} orders, "
              f"{replayed['transactions']} transactions): the state that legitimately grows")
    timeline = result["memory"]["timeline"]
    print("  timeline (anon MiB):  " + "  ".join(f"{row['t_s']:>4.0f}s gw {row['gateway']:.0f} shards "
                                                  f"{row['shards']:.0f} books {row['books']:.0f}"
                                                  for row in timeline[:: max(1, len(timeline) // 8)]))

    journal, verify = result["journal"], result["verify"]
    print(f"\njournals: {journal['records']} records, {journal['events']} events; orders accepted "
          f"{journal['by_kind'].get('OrderAccepted', 0)}, trades {journal['by_kind'].get('TradeExecuted', 0)}, "
          f"closed by a book {journal['by_kind'].get('OrderClosed', 0)}")
    left = result["leftover_processes"]
    print(f"service stop: exit {result['stop_exit_code']}, "
          f"{'processes left behind (killed): ' + ', '.join(left) if left else 'no process left behind'}")
    print(f"verify: exit {verify['exit_code']} in {verify['seconds']:.1f} s: {verify['verdict']}")
    if result["log_problems"]:
        print("lines reporting problems in the service's logs:")
        for name, lines in result["log_problems"].items():
            for line in lines[:5]:
                print(f"  {name}: {line[:200]}")
    failed = "; ".join(result["failed_checks"]) or "every check held"
    print(f"\nresult: {'PASS' if result['passed'] else 'FAIL'} ({failed}); written to {result['output_dir']}")
