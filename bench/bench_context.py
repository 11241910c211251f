"""Setting the request context (user, organization, role) at the start of a request transaction.

seed: the seed document's way, three set_config(name, value, true) statements in a transaction
      (psycopg's BEGIN, then each statement its own round trip);
ours: one call of app.begin_request through ms8.db.as_user, which also looks the user up and
      checks the role, BEGIN pipelined with it.

Each way runs on its own warm runtime-role connection (prepare_threshold=None, as in
production); the transaction is rolled back untimed after each repetition. The ways alternate.
Round trips are counted from a libpq protocol trace.

On 127.0.0.1 a round trip costs a few tens of microseconds, so the two ways cost about the same
there; between a Lambda function and RDS Proxy it costs far more. The bench therefore runs twice:
directly, and through a local TCP relay that holds every packet for half of --rtt-ms each way
(default 0.5 ms round trip).

    .venv/bin/python bench/bench_context.py [--runs 2000] [--rtt-ms 0.5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from uuid import UUID

import _common
import psycopg
from psycopg import pq

from local import localdb
from ms8 import db

DB = "ms8_bench_context"


def prepare() -> tuple[UUID, UUID]:
    """A fresh bench database with 1,000 users; returns a learner's id and the organization's."""
    _common.migrated_database(DB, fresh=True)
    with psycopg.connect(localdb.owner_url(DB)) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        org = conn.execute("INSERT INTO organizations (name) VALUES ('Bench') RETURNING id").fetchone()
        assert org is not None
        conn.execute(
            "INSERT INTO users (organization_id, email, name, roles) "
            "SELECT %s, 'u' || g || '@bench.test', 'user', '{learner}' FROM generate_series(1, 1000) g",
            (org[0],),
        )
        user = conn.execute("SELECT id FROM users ORDER BY email LIMIT 1").fetchone()
        assert user is not None
    return user[0], org[0]


def round_trips(conn: psycopg.Connection, action: Callable[[], object]) -> int:
    """How many times `action` waited for the server (messages sent, then messages received)."""
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            action()
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        directions = [line.split("\t", 1)[0] for line in trace.read().splitlines() if line.strip()]
    return sum(1 for i, d in enumerate(directions) if d == "B" and (i == 0 or directions[i - 1] == "F"))


class DelayRelay:
    """A TCP relay to a local port that delays every chunk by `delay` seconds, each direction.

    It runs in a process of its own, so it does not compete with the bench for the GIL.
    """

    def __init__(self, target_port: int, delay: float) -> None:
        parent, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=self._serve, args=(target_port, delay, child), daemon=True)
        self.process.start()
        self.port: int = parent.recv()

    @classmethod
    def _serve(cls, target_port: int, delay: float, conn: Connection) -> None:
        server = socket.create_server(("127.0.0.1", 0))
        conn.send(server.getsockname()[1])
        while True:
            client, _ = server.accept()
            upstream = socket.create_connection(("127.0.0.1", target_port))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cls._pipe(client, upstream, delay)
            cls._pipe(upstream, client, delay)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, delay: float) -> None:
        held: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def read() -> None:
            while True:
                try:
                    data = source.recv(65536)
                except OSError:
                    data = b""
                held.put((time.perf_counter() + delay, data))
                if not data:
                    return

        def write() -> None:
            while True:
                due, data = held.get()
                if not data:
                    sink.close()
                    return
                while (wait := due - time.perf_counter()) > 0:
                    time.sleep(wait)
                try:
                    sink.sendall(data)
                except OSError:
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def close(self) -> None:
        self.process.terminate()
        self.process.join()


def measure(url: str, user: UUID, org: UUID, runs: int, warmup: int) -> tuple[dict[str, int], dict[str, list[float]]]:
    """Round trips of each way, and its times in ms over `runs` alternating repetitions; "rtt" is
    a bare `SELECT 1` in autocommit, the cost of one round trip on that network."""
    seed_conn = psycopg.connect(url, prepare_threshold=None)
    our_conn = psycopg.connect(url, prepare_threshold=None)

    def seed() -> None:
        for name, value in (("app.current_user_id", str(user)), ("app.current_org_id", str(org)),
                            ("app.current_role", "learner")):
            seed_conn.execute("SELECT set_config(%s, %s, true)", (name, value))

    def ours() -> None:
        db.as_user(user, None)(our_conn)

    ways: dict[str, tuple[Callable[[], None], psycopg.Connection]] = {
        "seed": (seed, seed_conn), "ours": (ours, our_conn),
    }
    trips = {}
    for name, (action, conn) in ways.items():
        trips[name] = round_trips(conn, action)
        seen = conn.execute("SELECT current_setting('app.current_user_id', true), "
                            "current_setting('app.current_role', true)").fetchone()
        assert seen == (str(user), "learner"), (name, seen)
        conn.rollback()

    times: dict[str, list[float]] = {name: [] for name in [*ways, "rtt"]}
    with psycopg.connect(url, prepare_threshold=None, autocommit=True) as probe:
        for run in range(warmup + runs):
            started = time.perf_counter()
            probe.execute("SELECT 1")
            if run >= warmup:
                times["rtt"].append((time.perf_counter() - started) * 1000)
    for run in range(warmup + runs):
        for name, (action, conn) in (ways.items() if run % 2 else reversed(ways.items())):
            started = time.perf_counter()
            action()
            elapsed = (time.perf_counter() - started) * 1000
            conn.rollback()
            if run >= warmup:
                times[name].append(elapsed)
    seed_conn.close()
    our_conn.close()
    return trips, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rtt-ms", type=float, default=0.5, help="simulated network round trip")
    args = parser.parse_args()
    user, org = prepare()
    url = localdb.runtime_url(DB)
    port = int(str(psycopg.conninfo.conninfo_to_dict(url)["port"]))
    relay = DelayRelay(port, args.rtt_ms / 2000)
    slow_url = url.replace(f":{port}/", f":{relay.port}/")
    labels = {
        "seed": "seed: BEGIN + three set_config statements",
        "ours": "ours: app.begin_request via ms8.db.as_user",
    }
    print(f"Setting the request context; {args.runs} runs each, transaction opened, rollback untimed")
    ratios = []
    for network, target in (("127.0.0.1 direct", url), (f"relay adding {args.rtt_ms} ms per round trip", slow_url)):
        trips, times = measure(target, user, org, args.runs, args.warmup)
        stats = {name: _common.median_p95(values) for name, values in times.items()}
        ratios.append((network, trips, stats["seed"][0] / stats["ours"][0]))
        print()
        print(f"{network}: one round trip (SELECT 1) median {stats['rtt'][0]:.3f} ms")
        print(_common.table([
            [network, "round trips", "median ms", "p95 ms"],
            *[[labels[n], str(trips[n]), f"{stats[n][0]:.3f}", f"{stats[n][1]:.3f}"] for n in labels],
        ]))
    relay.close()
    print()
    print(_common.table([
        ["", "value", "target", ""],
        ["round trips, ours", str(ratios[0][1]["ours"]), "1", _common.verdict(ratios[0][1]["ours"] == 1)],
        *[[f"seed / ours (medians), {network}", f"{ratio:.1f}x", "", ""] for network, _, ratio in ratios],
    ]))

if __name__ == "__main__":
    main()
