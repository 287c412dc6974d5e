"""The engine benchmark's report: medians over the repeats, the table against the peers with the target's
verdict, the volumes compared, the conditions, and the stops-and-amends and before/after figures
(`bench/engine_bench.py` runs the engines)."""

from __future__ import annotations

import os
import platform
import statistics
import sys

from bench.machine import cpu_model
from bench.stream import mix

TARGET_RATIO = 1.5
OURS = "ours"
STP_NONE = "matching-engine (stp=none)"  # the check run: matching-engine with self-trade prevention off


def summarize(runs: list[dict]) -> dict:
    """Median over repeats of the timings; the counts must agree between repeats."""
    first = runs[0]
    out = dict(first)
    out["repeats"] = len(runs)
    out["messages_per_s"] = statistics.median(r["messages_per_s"] for r in runs)
    out["messages_per_s_all"] = [r["messages_per_s"] for r in runs]
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["p50_us"] = statistics.median(r["p50_us"] for r in runs)
    out["p99_us"] = statistics.median(r["p99_us"] for r in runs)
    keys = ("trades", "traded_quantity", "best_bid", "best_ask", "resting_orders")
    out["deterministic"] = all(all(r.get(k) == first.get(k) for k in keys) for r in runs)
    return out


def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def print_report(args, stream_mix: dict, results: dict[str, dict], extra: dict[str, dict],
                 skipped: dict[str, str], versions: dict[str, str], load: list) -> dict:
    ours = results.get(OURS)
    peers = {k: v for k, v in results.items() if k != OURS}
    fastest = max(peers.values(), key=lambda r: r["messages_per_s"]) if peers else None

    print()
    print("Engine benchmark: the same stream through every engine")
    print("=" * 78)
    hdr = f"{'engine':<28}{'python':>8}{'msg/s (median)':>16}{'trades':>10}{'traded qty':>13}{'p50 us':>9}{'p99 us':>9}{'ours/this':>10}"
    print(hdr)
    print("-" * len(hdr))
    rows = list(results.values()) + list(extra.values())
    for r in rows:
        ratio = "-"
        if ours and r is not ours and r["engine"] in peers:
            ratio = f"{ours['messages_per_s'] / r['messages_per_s']:.2f}x"
        print(f"{r['engine']:<28}{r['python']:>8}{fmt_rate(r['messages_per_s']):>16}{r['trades']:>10,}"
              f"{r['traded_quantity']:>13,}{r['p50_us']:>9.2f}{r['p99_us']:>9.2f}{ratio:>10}")
    print()
    for r in rows:
        spread = ", ".join(fmt_rate(x) for x in r.get("messages_per_s_all", [r["messages_per_s"]]))
        det = "" if r.get("deterministic", True) else "   NOT DETERMINISTIC across repeats!"
        print(f"  {r['engine']:<28} runs msg/s: {spread}{det}")
    for name, why in skipped.items():
        print(f"  {name:<28} SKIPPED: {why}")

    verdict = None
    print()
    if ours and fastest:
        ratio = ours["messages_per_s"] / fastest["messages_per_s"]
        verdict = ratio >= TARGET_RATIO
        print(f"Ours vs the fastest peer ({fastest['engine']}): {ratio:.3f}x "
              f"(target >= {TARGET_RATIO}x): {'MET' if verdict else 'NOT MET'}")
    elif not ours:
        print("Ours: not measured (see the error above).")
    else:
        print("No peer measured: no ratio.")

    # Volumes side by side.
    print()
    print("Traded volume (trades / quantity), and why it differs:")
    for r in rows:
        print(f"  {r['engine']:<28}{r['trades']:>10,} trades {r['traded_quantity']:>13,} lots"
              f"   stp cancels: {r.get('stp_cancels', '-')}  effective cancels: {r.get('cancels_done', '-')}")
    for r in rows:
        if r.get("rejected"):
            print(f"  WARNING: {r['engine']} rejected {r['rejected']:,} orders of this stream (none expected)")
    me = results.get("matching-engine")
    lme = results.get("lightmatchingengine")
    me_none = extra.get(STP_NONE)

    def same(a, b):
        return a["trades"] == b["trades"] and a["traded_quantity"] == b["traded_quantity"]

    if ours and me:
        print(f"  ours vs matching-engine (both cancel the taker on a self-trade): "
              f"{'IDENTICAL' if same(ours, me) else 'DIFFERENT: the semantics agree here, so this is a bug in one of them'}")
    if lme and me_none:
        print(f"  lightmatchingengine vs matching-engine with stp=none (neither prevents self-trades): "
              f"{'IDENTICAL' if same(lme, me_none) else 'DIFFERENT (unexpected)'}")
    if lme and (ours or me):
        ref = ours or me
        print(f"  {ref['engine']} vs lightmatchingengine: "
              f"{'identical' if same(ref, lme) else 'different'} - expected, lightmatchingengine has no users and "
              f"lets an order trade with its own user's resting orders; ours and matching-engine cancel the "
              f"incoming remainder instead (see stp cancels above). Market orders: lightmatchingengine has "
              f"no IOC, emulated by price 0 + cancel of the remainder, which trades the same.")

    print()
    print("Final book (best bid / best ask, ticks; resting orders):")
    for r in rows:
        print(f"  {r['engine']:<28}{str(r.get('best_bid')):>8} / {str(r.get('best_ask')):<8}"
              f"{'' if r.get('resting_orders') is None else format(r['resting_orders'], ','):>10}")

    print()
    print("Conditions:")
    print(f"  CPU: {cpu_model()}; cores: {os.cpu_count()}; {platform.system()} {platform.release()}")
    print(f"  Python: ours {platform.python_version()} ({sys.executable}); "
          + "; ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"  stream: {args.count:,} messages, seed {args.seed}, {args.users} users; "
          f"mix L {stream_mix['L']:,} / M {stream_mix['M']:,} / C {stream_mix['C']:,} "
          f"({100 * stream_mix['L'] / max(1, args.count):.1f}% / {100 * stream_mix['M'] / max(1, args.count):.1f}% / "
          f"{100 * stream_mix['C'] / max(1, args.count):.1f}%)")
    print(f"  load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f} "
          f"(other work on this machine's {os.cpu_count()} cores shows up as noise between runs)")
    print(f"  repeats: {args.repeats}, engines alternated within each round; figures are medians")
    print("  timing: perf_counter around the whole loop (stream generated and translated before), "
          "perf_counter_ns around each message's call(s) for p50/p99; GC on, input frozen")
    for r in rows:
        print(f"  {r['engine']}: {r.get('notes', '')}")
    return {"verdict": verdict, "fastest_peer": fastest["engine"] if fastest else None}


def print_stops_and_baseline(stops: dict | None, plain: dict | None, paired: dict[str, dict],
                             stop_stream: list | None) -> None:
    """The stream with stops and amends beside the plain one, and the paired before/after runs."""
    if stops is not None:
        print()
        print("Stops and amends (our book, same rounds):")
        stop_mix = mix(stop_stream)
        print(f"  stream: {len(stop_stream):,} messages, mix {stop_mix}")
        for r in (plain, stops):
            if r is not None:
                spread = ", ".join(fmt_rate(x) for x in r.get("messages_per_s_all", [r["messages_per_s"]]))
                print(f"  {r['engine']:<32}{fmt_rate(r['messages_per_s']):>12} msg/s (median; runs {spread})"
                      f"  p50 {r['p50_us']:.2f} us  p99 {r['p99_us']:.2f} us  trades {r['trades']:,}")
        print(f"  stops triggered {stops['stops_triggered']:,}, still waiting {stops['waiting_stops']:,}, "
              f"amends refused {stops['amends_refused']:,} (their order had gone)")
        if plain is not None:
            print(f"  with stops / plain: {stops['messages_per_s'] / plain['messages_per_s']:.3f}")
    if paired:
        print()
        print("Plain stream, before and after (each in a fresh subprocess, alternating order per round):")
        for r in paired.values():
            spread = ", ".join(fmt_rate(x) for x in r["messages_per_s_all"])
            print(f"  {r['engine']:<44}{fmt_rate(r['messages_per_s']):>12} msg/s (median; runs {spread})"
                  f"  trades {r['trades']:,}")
        before, after = paired.values()
        print(f"  after / before: {after['messages_per_s'] / before['messages_per_s']:.3f}"
              f"  (identical trades: {before['trades'] == after['trades']})")
