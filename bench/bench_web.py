"""The web app: how soon the learner dashboard shows its numbers, and how big the shipped app is.

    .venv/bin/python bench/bench_web.py [--runs 15] [--url http://127.0.0.1:3000]

Load time, in headless Chromium (Debian's, driven by Selenium) against the local stack (its own
`ms8_bench_web` demo database, loaded afresh, and a gateway with 2 workers, or a running
`make run` with --url): the learner's token is put in sessionStorage, then each run navigates to /app/ and reads
the Navigation Timing entry (time to first byte, DOMContentLoaded, load) and the `ms8:numbers`
performance mark the app sets once the headline numbers are rendered, all from the start of the
navigation. The first run has an empty cache (cold); the others reuse the cached assets, as a
returning user does. Baseline in the same run: the API calls the dashboard waits for (/v1/me,
then /v1/analytics and /v1/comparison at once) made from Python on a keep-alive connection, the
floor the page cannot beat.

The verdict takes the 95th percentile of all navigations
(cold and warm); the load average is printed, since other work on the machine shows in the tail.

Size: every JavaScript and CSS file of web/dist (what the browser downloads), raw and gzip -9
(what a CDN with compression sends). Targets: numbers within 1 s, JS + CSS under 300 KB compressed.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, percentile, table, verdict
from bench_gateway import given_gateway, own_gateway

from local import browser, demo_ids, stack, tokens
from local.paths import WEB_DIST

LOAD_TARGET_MS = 1000.0
SIZE_TARGET_KB = 300.0
DB = "ms8_bench_web"


def bundle_sizes(dist: Path = WEB_DIST) -> tuple[int, int]:
    """(raw bytes, gzip -9 bytes) of the shipped JavaScript and CSS."""
    files = [p for p in dist.rglob("*") if p.suffix in (".js", ".css")]
    if not files:
        raise SystemExit("web/dist has no JavaScript: build it first (make web)")
    raw = sum(p.stat().st_size for p in files)
    packed = sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in files)
    return raw, packed


def api_floor(url: str, token: str, runs: int) -> list[float]:
    """ms for /v1/me, then /v1/analytics and /v1/comparison in parallel: the calls the numbers need."""
    parts = urlsplit(url)
    headers = {"Authorization": f"Bearer {token}"}

    def get(conn: http.client.HTTPConnection, path: str) -> None:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, (path, resp.status)

    assert parts.hostname is not None, url
    conns = [http.client.HTTPConnection(parts.hostname, parts.port, timeout=10) for _ in range(2)]
    times = []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            get(conns[0], "/v1/me")
            list(pool.map(get, conns, ["/v1/analytics?limit=50", "/v1/comparison"]))
            times.append((time.perf_counter() - t0) * 1000)
    for c in conns:
        c.close()
    return times[1:]  # the first opens the connections


def page_loads(url: str, token: str, runs: int) -> list[dict[str, float]]:
    """Per navigation: ttfb, dcl, load and numbers (ms from the navigation's start); the first cold."""
    results = []
    with browser.chromium() as driver:
        driver.get(f"{url}/app/config.json")  # the app's origin, to put the token in its sessionStorage
        driver.execute_script("sessionStorage.setItem('ms8.token', arguments[0])", token)
        for _ in range(runs):
            driver.get(f"{url}/app/")
            deadline = time.monotonic() + 10
            numbers = None
            while numbers is None and time.monotonic() < deadline:
                numbers = driver.execute_script(
                    "const m = performance.getEntriesByName('ms8:numbers'); return m.length ? m[0].startTime : null")
                if numbers is None:
                    time.sleep(0.02)
            if numbers is None:
                raise SystemExit("the learner dashboard did not show its numbers within 10 s")
            nav = driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return {ttfb: n.responseStart, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd}")
            tiles = driver.execute_script("return document.querySelectorAll('#headline .tile[data-value]').length")
            assert tiles == 4, f"{tiles} headline numbers on the page"
            results.append({**{k: float(v) for k, v in nav.items()}, "numbers": float(numbers)})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="navigations (the first with an empty cache)")
    parser.add_argument("--url", help="a running `make run` (default: a gateway of this script's own)")
    args = parser.parse_args(argv)
    raw, packed = bundle_sizes()
    token = tokens.user_token(demo_ids.LEARNER)
    # A fresh demo each run: the comparison counts only recent snapshots, and migrations move on.
    started = False
    if not args.url:
        started = stack.prepare_database(reset_demo=True, db=DB)
        stack.apply_function_env(None, db=DB)
    server: AbstractContextManager[Any] = given_gateway(args.url) if args.url else own_gateway(2, DB)
    try:
        with server as srv:
            floor = api_floor(srv.url, token, args.runs)
            loads = page_loads(srv.url, token, args.runs)
    finally:
        stack.stop_database(started, DB)
    cold, warm = loads[0], loads[1:] or loads
    warm_numbers = [r["numbers"] for r in warm]
    worst = max(r["numbers"] for r in loads)
    p95_all = percentile([r["numbers"] for r in loads], 95)  # the verdict: cold and warm together
    rows = [["measure", "cold (1st)", "warm median", "warm p95", "target", "verdict"]]
    for key, label in (("ttfb", "first byte of index.html"), ("dcl", "DOMContentLoaded"), ("load", "load event")):
        values = [r[key] for r in warm]
        rows.append([label, f"{cold[key]:.0f} ms", f"{statistics.median(values):.0f} ms",
                     f"{percentile(values, 95):.0f} ms", "", ""])
    rows.append(["learner numbers on screen", f"{cold['numbers']:.0f} ms", f"{statistics.median(warm_numbers):.0f} ms",
                 f"{percentile(warm_numbers, 95):.0f} ms", f"{LOAD_TARGET_MS:.0f} ms", verdict(p95_all <= LOAD_TARGET_MS)])
    rows.append(["baseline: its API calls alone", "", f"{statistics.median(floor):.0f} ms",
                 f"{percentile(floor, 95):.0f} ms", "", ""])
    print(f"Learner dashboard, {args.runs} navigations in headless Chromium ({srv.url}):")
    print(table(rows))
    print()
    print(table([["shipped JS + CSS", "raw", "gzip -9", "target", "verdict"],
                 ["web/dist", f"{raw / 1024:.1f} KB", f"{packed / 1024:.1f} KB", f"{SIZE_TARGET_KB:.0f} KB",
                  verdict(packed / 1024 <= SIZE_TARGET_KB)]]))
    print(f"\n(all {len(loads)} navigations: p95 {p95_all:.0f} ms, worst {worst:.0f} ms; "
          f"built app in {WEB_DIST.relative_to(ROOT)}; load average {os.getloadavg()[0]:.1f})")
    return 0 if p95_all <= LOAD_TARGET_MS and packed / 1024 <= SIZE_TARGET_KB else 1


if __name__ == "__main__":
    sys.exit(main())
