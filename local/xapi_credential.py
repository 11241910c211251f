"""xAPI credentials of an organization: create, rotate, revoke, list (as the owner, in maintenance).

    python -m local.xapi_credential create --org acme [--home-page https://moodle.acme.example] [--description ...]
    python -m local.xapi_credential rotate KEY      # a new secret, same key
    python -m local.xapi_credential revoke KEY      # refused from the next request on
    python -m local.xapi_credential list --org acme

`--org` is a demo slug (acme, globex) or an organization id. The secret is printed once and only
its scrypt hash is stored. `--home-page` is the account homePage the platform's actors use
(Moodle: its wwwroot; Open edX: the LMS root URL): actors with that homePage are matched to users.
Connects to DATABASE_URL's owner (OWNER_DATABASE_URL) or the local embedded database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid

import psycopg

from local import demo_ids, localdb
from ms8.repositories import xapi as repo
from ms8.xapi import credentials


def _org(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return demo_ids.org_id(value)


def _url() -> str:
    return os.environ.get("OWNER_DATABASE_URL") or localdb.owner_url(localdb.DEFAULT_DB)


def create(conn: psycopg.Connection, org: uuid.UUID, home_page: str | None, description: str = "",
           key: str | None = None, secret: str | None = None) -> tuple[str, str]:
    """Register a credential (inside the caller's maintenance transaction); returns (key, secret)."""
    key, secret = key or credentials.new_key(), secret or credentials.new_secret()
    repo.create_credential(conn, key, org, credentials.hash_secret(secret), home_page, description)
    return key, secret


def ensure_demo(conn: psycopg.Connection) -> None:
    """The demo credential of ACME (fixed key and secret), registered once."""
    with conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        if conn.execute("SELECT 1 FROM xapi_credentials WHERE key = %s", (demo_ids.XAPI_KEY,)).fetchone():
            return
        create(conn, demo_ids.org_id(demo_ids.ACME), demo_ids.XAPI_HOME_PAGE, "local demo credential",
               demo_ids.XAPI_KEY, demo_ids.XAPI_SECRET)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.xapi_credential")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--org", required=True)
    c.add_argument("--home-page")
    c.add_argument("--description", default="")
    for name in ("rotate", "revoke"):
        sub.add_parser(name).add_argument("key")
    sub.add_parser("list").add_argument("--org", required=True)
    args = parser.parse_args(argv)
    with psycopg.connect(_url(), autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        if args.cmd == "create":
            key, secret = create(conn, _org(args.org), args.home_page, args.description)
            print(json.dumps({"key": key, "secret": secret, "homePage": args.home_page}))
        elif args.cmd == "rotate":
            secret = credentials.new_secret()
            if not repo.rotate_credential(conn, args.key, credentials.hash_secret(secret)):
                print(f"no active credential {args.key}", file=sys.stderr)
                return 1
            print(json.dumps({"key": args.key, "secret": secret}))
        elif args.cmd == "revoke":
            if not repo.revoke_credential(conn, args.key):
                print(f"no active credential {args.key}", file=sys.stderr)
                return 1
            print(json.dumps({"key": args.key, "revoked": True}))
        else:
            print(json.dumps(repo.credentials(conn, _org(args.org)), default=str, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
