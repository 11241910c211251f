"""Run ADL's LRS conformance test suite (xAPI 1.0.3) against the xAPI endpoint and count per group.

    python -m local.conformance [--suite ../shared/xapi-conformance] [--url http://127.0.0.1:3030]
                                  [--key K --secret S] [--group "Statement Resource"] [--timeout 600]
                                  [--require-statements]

Without --url it starts what it needs: the embedded PostgreSQL, a fresh database, the local
gateway on a free port, and an xAPI credential of a new organization. The suite (a Node tool, not
part of the project) is copied out of --suite into a temporary folder and installed with npm;
it runs under a time limit (it waits forever on a response without
X-Experience-API-Consistent-Through). Prints `group: passed/total` per group and the groups about
statements together. --require-statements exits 1 unless every statement group passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local.paths import ROOT

# The suite sits in `shared/` beside the repository (CI); a git worktree one level further down
# finds it one folder higher.
SUITES = (ROOT.parent / "shared" / "xapi-conformance", ROOT.parent.parent / "shared" / "xapi-conformance")
DEFAULT_SUITE = next((p for p in SUITES if p.is_dir()), SUITES[0])

# The groups (top-level describes) about statements; the rest are documents, agents, activities,
# attachments, signatures and the alternate request syntax, which this LRS does not offer.
STATEMENT_GROUPS = (
    "Formatting Requirements", "Statement Lifecycle Requirements", "Id Property Requirements",
    "Actor Property Requirements", "Verb Property Requirements", "Object Property Requirements",
    "Result Property Requirements", "Context Property Requirements", "Timestamp Property Requirements",
    "Stored Property Requirements", "Authority Property Requirements", "Version Property Requirements",
    "Special Data Types and Rules", "Retrieval of Statements", "Encoding Requirements",
    "Content Type Requirements", "Statement Resource Requirements", "About Resource Requirements",
    "Error Codes Requirements", "Versioning Requirements", "Authentication Requirements",
)


def install(suite: Path) -> Path:
    """A writable copy of the suite with its dependencies (npm ci when a lock file is there)."""
    work = Path(tempfile.mkdtemp(prefix="xapi-conformance-"))
    shutil.copytree(suite, work, dirs_exist_ok=True)
    for path in [work, *work.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    command = ["npm", "ci"] if (work / "package-lock.json").exists() else ["npm", "install"]
    subprocess.run([*command, "--no-audit", "--no-fund", "--loglevel=error"], cwd=work, check=True,
                   stdout=subprocess.DEVNULL)
    return work


def _leaves(node: dict[str, Any]) -> Iterator[str]:
    tests = node.get("tests") or []
    if not tests:
        if node.get("status") in ("passed", "failed"):
            yield node["status"]
        return
    for child in tests:
        yield from _leaves(child)


def failures(log: dict[str, Any], groups: tuple[str, ...] = STATEMENT_GROUPS) -> list[str]:
    """`group > test: error` of each failed test of these groups."""
    found: list[str] = []

    def walk(node: dict[str, Any], path: list[str]) -> None:
        tests = node.get("tests") or []
        if not tests and node.get("status") == "failed":
            found.append(f"{' > '.join(path)}: {str(node.get('error'))[:300]}")
        for child in tests:
            walk(child, [*path, str(child.get("title"))[:100]])

    for group in (log.get("log") or {}).get("tests") or []:
        name = str(group.get("title") or group.get("name")).split(" (")[0]
        if name in groups:
            walk(group, [name])
    return found


def counts(log: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """group -> (passed, total) from the suite's run log."""
    found: dict[str, tuple[int, int]] = {}
    for group in (log.get("log") or {}).get("tests") or []:
        statuses = list(_leaves(group))
        name = str(group.get("title") or group.get("name")).split(" (")[0]
        passed, total = found.get(name, (0, 0))
        found[name] = (passed + statuses.count("passed"), total + len(statuses))
    return found


def run_suite(work: Path, url: str, key: str, secret: str, group: str | None, timeout: int) -> dict[str, Any]:
    logs = work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    command = ["timeout", str(timeout), "node", "bin/console_runner.js", "-e", f"{url}/xapi", "-a",
               "-u", key, "-p", secret, "-x", "1.0.3"]
    if group:
        command += ["-g", group]
    subprocess.run(command, cwd=work, stdout=subprocess.DEVNULL, check=False)
    found = sorted(logs.glob("*.log")) if logs.exists() else []
    if not found:
        raise SystemExit("the suite wrote no log (interrupted by the time limit?)")
    return dict(json.loads(found[-1].read_text()))


@contextmanager
def local_gateway() -> Iterator[tuple[str, str, str]]:
    """A fresh database, a gateway on a free port, and a credential of a new organization."""
    import psycopg

    from local import localdb, server, stack, xapi_credential

    started = False if localdb.EXTERNAL_ADMIN_URL or localdb.is_running() else localdb.start()
    dbname = f"ms8_conformance_{os.getpid()}"
    localdb.drop_database(dbname)
    try:
        localdb.bootstrap(dbname)
        localdb.migrate(dbname)
        localdb.set_runtime_password()
        with psycopg.connect(localdb.owner_url(dbname), autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT app.begin_maintenance()")
            org = uuid.uuid4()
            conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Conformance')", (org,))
            key, secret = xapi_credential.create(conn, org, "https://lms.example.org", "conformance suite")
        stack.apply_function_env(None, db=dbname)
        os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
        pool = server.Server(server.bind("127.0.0.1", 0), 2, quiet=True, output=subprocess.DEVNULL)
        pool.start()
        try:
            yield pool.url, key, secret
        finally:
            pool.stop()
    finally:
        localdb.drop_database(dbname)
        if started and not localdb.other_databases(dbname):
            localdb.stop()


def report(found: dict[str, tuple[int, int]]) -> bool:
    ours = {g: found[g] for g in STATEMENT_GROUPS if g in found}
    for name, (passed, total) in found.items():
        mark = "*" if name in ours else " "
        print(f"{mark} {name}: {passed}/{total}")
    passed = sum(p for p, _ in ours.values())
    total = sum(t for _, t in ours.values())
    everything = (sum(p for p, _ in found.values()), sum(t for _, t in found.values()))
    print(f"statement groups (*): {passed}/{total}; all groups: {everything[0]}/{everything[1]}")
    return passed == total and total > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.conformance")
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--secret")
    parser.add_argument("--group")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--require-statements", action="store_true")
    args = parser.parse_args(argv)
    work = install(args.suite)
    try:
        if args.url:
            log = run_suite(work, args.url.rstrip("/"), args.key, args.secret, args.group, args.timeout)
        else:
            with local_gateway() as (url, key, secret):
                log = run_suite(work, url, key, secret, args.group, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = report(counts(log))
    for line in failures(log)[:30]:
        print("FAILED", line)
    return 0 if ok or not args.require_statements else 1


if __name__ == "__main__":
    sys.exit(main())
