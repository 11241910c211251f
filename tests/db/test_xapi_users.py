"""app.xapi_users (migrations 0010, 0020) as the runtime role in an xAPI request: the users of the
credential's organization with one of the ids or e-mails, each once, through the users' unique
indexes; all of them for mbox_sha1sum actors; never another organization's; nothing outside an
xAPI request."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import psycopg

from tests.support.factories import Factory
from tests.support.xapi import credential, email_of


def _users(conn: psycopg.Connection, key: str | None, ids: list[UUID], emails: list[str], everyone: bool) -> Any:
    with conn.transaction():
        if key is not None:
            conn.execute("SELECT * FROM app.begin_xapi_request(%s)", (key,))
        rows = conn.execute("SELECT user_id, email FROM app.xapi_users(%s, %s, %s)", (ids, emails, everyone))
        return sorted(rows.fetchall())


def test_ids_and_emails_of_the_organization_each_once(factory: Factory, runtime_conn: psycopg.Connection) -> None:
    mine = factory.org("Mine", ann=["learner"], bea=["learner"], cid=["trainer"])
    theirs = factory.org("Theirs", xavier=["learner"])
    key, _ = credential(factory, mine.id)
    ann, bea, cid = (mine.users[k] for k in ("ann", "bea", "cid"))
    xavier = theirs.users["xavier"]
    ann_mail, bea_mail = email_of(factory, ann).lower(), email_of(factory, bea).lower()

    # by id, by e-mail (lower case, as the caller sends them), a user named both ways once;
    # another organization's never
    found = _users(runtime_conn, key, [ann, xavier, uuid.uuid4()],
                   [bea_mail, ann_mail, email_of(factory, xavier).lower()], False)
    assert found == sorted([(ann, ann_mail), (bea, bea_mail)])
    # everyone of the organization (mbox_sha1sum actors: the caller hashes the e-mails)
    assert {u for u, _ in _users(runtime_conn, key, [], [], True)} == {ann, bea, cid}
    assert _users(runtime_conn, key, [], [], False) == []
    # outside an xAPI request: nothing
    assert _users(runtime_conn, None, [ann], [ann_mail], True) == []
