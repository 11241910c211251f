"""The RLS matrix, cell by cell, connected as the runtime role.

Every tenant table x acting role x command x target, with the expected outcome written out below
(docs/SECURITY.md and the policies of migration 0002). Each cell runs in its own transaction on a
runtime connection and is rolled back.

Targets, for tables whose rows belong to a user: `own` the actor's own row, `peer` a learner of
the same organization not assigned to the acting trainer, `assigned` a learner assigned to the
acting trainer (for the other actors: just another learner of the organization), `other` a user of
another organization. For tables whose rows belong to an organization (organizations,
aggregated_analytics, skill_targets, service_clients) `own` is the organization every actor acts
in and `other` another one. Service scopes and "no context" have no own user row.

Outcomes: SELECT allowed = the row is visible; UPDATE / DELETE allowed = one row affected (RLS
filtering gives 0); INSERT allowed = no error. A refusal by a policy or a missing grant raises
InsufficientPrivilege: denied either way. Any other error fails the test.

INSERT cells run in a second, blank organization pair (users and reports only), so the row they
insert is exactly the row the other cells find in the populated pair.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors, pq, sql
from psycopg.types.json import Json, Jsonb

from ms8 import db
from tests.support.factories import Factory

# One line per table and actor; each command has four characters for the targets
# own, peer, assigned, other: "+" allowed, "-" denied, "." no such target.
MATRIX = """
table                 actor       SELECT  INSERT  UPDATE  DELETE
organizations         learner     +..-    ...-    -..-    -..-
organizations         trainer     +..-    ...-    -..-    -..-
organizations         org_admin   +..-    ...-    -..-    -..-
organizations         ingest      +..-    ...-    -..-    -..-
organizations         directory   +..+    ...+    +..+    -..-
organizations         none        -..-    ...-    -..-    -..-
users                 learner     +---    ----    ----    ----
users                 trainer     +-+-    ----    ----    ----
users                 org_admin   +++-    ----    +++-    +++-
users                 ingest      .---    .---    .---    .---
users                 directory   .+++    .+++    .+++    .+++
users                 none        .---    .---    .---    .---
user_tombstones       learner     ----    ----    ----    ----
user_tombstones       trainer     ----    ----    ----    ----
user_tombstones       org_admin   +++-    +++-    +++-    ----
user_tombstones       ingest      .---    .---    .---    .---
user_tombstones       directory   .+++    .+++    .+++    .---
user_tombstones       none        .---    .---    .---    .---
analytics             learner     +---    +---    +---    ----
analytics             trainer     +-+-    +---    +---    ----
analytics             org_admin   +++-    +---    +---    +++-
analytics             ingest      .++-    .++-    .++-    .---
analytics             directory   .---    .---    .---    .---
analytics             none        .---    .---    .---    .---
gamification          learner     +---    +---    +---    ----
gamification          trainer     +-+-    +---    +---    ----
gamification          org_admin   +++-    +---    +---    +++-
gamification          ingest      .++-    .++-    .++-    .---
gamification          directory   .---    .---    .---    .---
gamification          none        .---    .---    .---    .---
points_ledger         learner     +---    +---    ----    ----
points_ledger         trainer     +---    +---    ----    ----
points_ledger         org_admin   +++-    +---    ----    ----
points_ledger         ingest      .++-    .++-    .---    .---
points_ledger         directory   .---    .---    .---    .---
points_ledger         none        .---    .---    .---    .---
learning_events       learner     +---    +---    ----    ----
learning_events       trainer     +-+-    +---    ----    ----
learning_events       org_admin   +++-    ----    ----    ----
learning_events       ingest      .++-    .++-    .---    .---
learning_events       directory   .---    .---    .---    .---
learning_events       none        .---    .---    .---    .---
learner_daily_activity learner    +---    +---    +---    ----
learner_daily_activity trainer    +-+-    +---    +---    ----
learner_daily_activity org_admin  +++-    ----    ----    ----
learner_daily_activity ingest     .++-    .++-    .++-    .---
learner_daily_activity directory  .---    .---    .---    .---
learner_daily_activity none       .---    .---    .---    .---
analytics_pending     learner     ----    ----    ----    ----
analytics_pending     trainer     ----    ----    ----    ----
analytics_pending     org_admin   ----    ----    ----    ----
analytics_pending     ingest      .++-    .++-    .++-    .---
analytics_pending     directory   .---    .---    .---    .---
analytics_pending     none        .---    .---    .---    .---
reports               learner     +---    +---    +---    ----
reports               trainer     +---    +---    +---    ----
reports               org_admin   +++-    +---    +---    ----
reports               ingest      .---    .---    .---    .---
reports               directory   .+++    .---    .---    .---
reports               none        .---    .---    .---    .---
report_links          learner     +---    +---    ----    ----
report_links          trainer     +---    +---    ----    ----
report_links          org_admin   +++-    +---    ----    ----
report_links          ingest      .---    .---    .---    .---
report_links          directory   .---    .---    .---    .---
report_links          none        .---    .---    .---    .---
aggregated_analytics  learner     -..-    -..-    -..-    -..-
aggregated_analytics  trainer     +..-    -..-    -..-    -..-
aggregated_analytics  org_admin   +..-    -..-    -..-    -..-
aggregated_analytics  ingest      -..-    -..-    -..-    -..-
aggregated_analytics  directory   -..-    -..-    -..-    -..-
aggregated_analytics  none        -..-    -..-    -..-    -..-
population_rollups    learner     -..-    -..-    -..-    -..-
population_rollups    trainer     +..-    -..-    -..-    -..-
population_rollups    org_admin   +..-    -..-    -..-    -..-
population_rollups    ingest      -..-    -..-    -..-    -..-
population_rollups    directory   -..-    -..-    -..-    -..-
population_rollups    none        -..-    -..-    -..-    -..-
trainer_assignments   learner     +---    ----    ----    ----
trainer_assignments   trainer     +-+-    ----    ----    ----
trainer_assignments   org_admin   +++-    +++-    ----    +++-
trainer_assignments   ingest      .---    .---    .---    .---
trainer_assignments   directory   .+++    .---    .---    .+++
trainer_assignments   none        .---    .---    .---    .---
skill_targets         learner     +..-    -..-    -..-    -..-
skill_targets         trainer     +..-    -..-    -..-    -..-
skill_targets         org_admin   +..-    +..-    +..-    +..-
skill_targets         ingest      +..-    -..-    -..-    -..-
skill_targets         directory   -..-    -..-    -..-    -..-
skill_targets         none        -..-    -..-    -..-    -..-
service_clients       learner     -..-    -..-    -..-    -..-
service_clients       trainer     -..-    -..-    -..-    -..-
service_clients       org_admin   -..-    -..-    -..-    -..-
service_clients       ingest      -..-    -..-    -..-    -..-
service_clients       directory   -..-    -..-    -..-    -..-
service_clients       none        -..-    -..-    -..-    -..-
xapi_credentials      learner     -..-    -..-    -..-    -..-
xapi_credentials      trainer     -..-    -..-    -..-    -..-
xapi_credentials      org_admin   -..-    -..-    -..-    -..-
xapi_credentials      ingest      -..-    -..-    -..-    -..-
xapi_credentials      directory   -..-    -..-    -..-    -..-
xapi_credentials      none        -..-    -..-    -..-    -..-
xapi_attachments      learner     -..-    -..-    -..-    -..-
xapi_attachments      trainer     -..-    -..-    -..-    -..-
xapi_attachments      org_admin   -..-    -..-    -..-    -..-
xapi_attachments      ingest      -..-    -..-    -..-    -..-
xapi_attachments      directory   -..-    -..-    -..-    -..-
xapi_attachments      none        -..-    -..-    -..-    -..-
xapi_statements       learner     ----    ----    ----    ----
xapi_statements       trainer     ----    ----    ----    ----
xapi_statements       org_admin   ----    ----    ----    ----
xapi_statements       ingest      .---    .---    .---    .---
xapi_statements       directory   .---    .---    .---    .---
xapi_statements       none        .---    .---    .---    .---
"""

ACTORS = ("learner", "trainer", "org_admin", "ingest", "directory", "none")
USER_ACTORS = ("learner", "trainer", "org_admin")
COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
TARGETS = ("own", "peer", "assigned", "other")
ORG_TABLES = frozenset({"organizations", "aggregated_analytics", "population_rollups", "skill_targets",
                        "service_clients", "xapi_credentials", "xapi_attachments"})
# A new organization is never the actor's own: organizations INSERT has only the `other` target.
NO_CELL = frozenset({("organizations", "INSERT", "own")})


def _parse(text: str) -> dict[tuple[str, str, str, str], bool | None]:
    cells: dict[tuple[str, str, str, str], bool | None] = {}
    for line in text.strip().splitlines()[1:]:
        table, actor, *masks = line.split()
        for command, mask in zip(COMMANDS, masks, strict=True):
            for target, mark in zip(TARGETS, mask, strict=True):
                cells[(table, actor, command, target)] = {"+": True, "-": False, ".": None}[mark]
    return cells


EXPECTED = _parse(MATRIX)
CELLS = [(key, allowed) for key, allowed in EXPECTED.items() if allowed is not None]

# Users of the two organizations ("home" and "away") and the role each holds.
HOME_USERS = {
    "learner": "learner", "trainer": "trainer", "org_admin": "org_admin",
    "peer": "learner", "assigned": "learner", "coach": "trainer",
}
AWAY_USERS = {"stranger": "learner", "coach_away": "trainer"}
SUBJECTS = ("learner", "trainer", "org_admin", "peer", "assigned", "stranger")
TABLE_ORDER = (
    "user_tombstones", "analytics", "gamification", "points_ledger", "learning_events", "learner_daily_activity",
    "analytics_pending",
    "reports", "report_links", "trainer_assignments", "aggregated_analytics", "population_rollups", "skill_targets",
    "service_clients", "xapi_credentials", "xapi_attachments", "xapi_statements",
)


@dataclass
class World:
    """Two organizations, their users, and (when populated) one row per table and subject."""

    org: dict[str, UUID]
    user: dict[str, UUID]
    org_of: dict[str, UUID]
    role_of: dict[str, str]
    ingest_client: str
    reports: dict[str, UUID] = field(default_factory=dict)
    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


def _user_row(world: World, subject: str) -> dict[str, Any]:
    return {"user_id": world.user[subject], "organization_id": world.org_of[subject]}


def _trainer_of(subject: str) -> str:
    return {"assigned": "trainer", "stranger": "coach_away"}.get(subject, "coach")


# table -> builder of the row that belongs to a subject (a user key, or "home" / "away").
BUILDERS: dict[str, Callable[[World, str], dict[str, Any]]] = {
    "organizations": lambda w, s: {"id": uuid.uuid4(), "name": "Matrix new org"},
    "users": lambda w, s: {
        "id": (uid := uuid.uuid4()), "organization_id": w.org_of[s], "email": f"m-{uid.hex}@example.test",
        "name": "matrix", "roles": ["learner"],
    },
    "user_tombstones": lambda w, s: {**_user_row(w, s), "source_version": 1},
    "analytics": lambda w, s: {
        **_user_row(w, s), "role": w.role_of[s], "analytics_type": "mastery", "data": Jsonb({"mastery": 0.5}),
    },
    "gamification": lambda w, s: {**_user_row(w, s), "role": w.role_of[s], "points": 10},
    "points_ledger": lambda w, s: {**_user_row(w, s), "award_key": "matrix", "points": 5, "occurred_at": _now()},
    "learning_events": lambda w, s: {
        **_user_row(w, s), "event_id": uuid.uuid4(), "verb": "completed", "object_id": "course-1",
        "object_type": "course", "occurred_at": _now() - timedelta(hours=1),
    },
    "learner_daily_activity": lambda w, s: {
        **_user_row(w, s), "day": date.today(), "events": 1, "completions": 0, "assessments": 0, "scored": 0,
        "score_micros": 0, "passed": 0, "duration_seconds": 0, "sessions": 0, "last_at": _now(),
    },
    "analytics_pending": lambda w, s: {**_user_row(w, s), "since": _now(), "occurred_from": _now()},
    "reports": lambda w, s: {**_user_row(w, s), "id": uuid.uuid4(), "role": w.role_of[s], "format": "csv"},
    "report_links": lambda w, s: {
        **_user_row(w, s), "id": uuid.uuid4(), "report_id": w.reports[s],
        "expires_at": _now() + timedelta(minutes=15),
    },
    "trainer_assignments": lambda w, s: {
        "organization_id": w.org_of[s], "trainer_id": w.user[_trainer_of(s)], "learner_id": w.user[s],
    },
    "aggregated_analytics": lambda w, s: {
        "organization_id": w.org[s], "granularity": "daily", "role": "learner", "analytics_type": "mastery",
        "period_start": date.today() - timedelta(days=1), "period_end": date.today(), "user_count": 10,
        "data": Jsonb({"mastery": 0.5}),
    },
    "population_rollups": lambda w, s: _rollup_row(w.org[s], None),
    "skill_targets": lambda w, s: {"organization_id": w.org[s], "skill": "matrix-skill", "target_level": 0.8},
    "service_clients": lambda w, s: {
        "client_id": f"matrix-{uuid.uuid4().hex}", "organization_id": w.org[s], "scopes": ["ingest"],
    },
    # Only an xAPI request (a credential's key in the context) reaches these: no actor here does.
    "xapi_credentials": lambda w, s: {
        "key": f"xkmatrix{uuid.uuid4().hex[:12]}", "organization_id": w.org[s], "secret_hash": "scrypt$matrix",
    },
    "xapi_attachments": lambda w, s: {
        "organization_id": w.org[s], "sha2": uuid.uuid4().hex, "content_type": "text/plain", "content": b"x",
    },
    "xapi_statements": lambda w, s: {
        **_user_row(w, s), "statement_id": uuid.uuid4(), "statement": Json({"matrix": True}), "stored": _now(),
        "credential_key": "xkmatrix",
    },
}


def _rollup_row(org: UUID, trainer: UUID | None, granularity: str = "daily") -> dict[str, Any]:
    return {"organization_id": org, "trainer_id": trainer, "granularity": granularity,
            "period_start": date.today() - timedelta(days=1), "period_end": date.today(), "learners": 10,
            "active_learners": 1, "completions": 0, "assessments": 0, "scored": 0, "score_micros": 0,
            "duration_seconds": 0, "distribution": Jsonb({}), "version": 2}


KEYS: dict[str, tuple[str, ...]] = {
    "organizations": ("id",),
    "users": ("id",),
    "user_tombstones": ("user_id",),
    "analytics": ("user_id", "role", "analytics_type"),
    "gamification": ("user_id", "role"),
    "points_ledger": ("user_id", "award_key"),
    "learning_events": ("event_id", "occurred_at"),
    "learner_daily_activity": ("user_id", "day"),
    "analytics_pending": ("user_id",),
    "reports": ("id",),
    "report_links": ("id",),
    "trainer_assignments": ("trainer_id", "learner_id"),
    "aggregated_analytics": ("organization_id", "granularity", "analytics_type", "role", "period_start"),
    "population_rollups": ("organization_id", "granularity", "period_start"),
    "skill_targets": ("organization_id", "skill"),
    "service_clients": ("client_id",),
    "xapi_credentials": ("key",),
    "xapi_attachments": ("organization_id", "sha2"),
    "xapi_statements": ("organization_id", "statement_id"),
}

# A change that keeps the row where it is (same owner, same organization).
UPDATES: dict[str, str] = {
    "organizations": "name = name",
    "users": "name = name",
    "user_tombstones": "source_version = source_version + 1",
    "analytics": "data = data",
    "gamification": "points = points + 1",
    "points_ledger": "points = points + 1",
    "learning_events": "score = 0.5",
    "learner_daily_activity": "events = events + 1",
    "analytics_pending": "version = version + 1",
    "reports": "status = status",
    "report_links": "expires_at = expires_at",
    "trainer_assignments": "created_at = created_at",
    "aggregated_analytics": "user_count = user_count",
    "population_rollups": "learners = learners",
    "skill_targets": "target_level = target_level",
    "service_clients": "description = description",
    "xapi_credentials": "description = description",
    "xapi_attachments": "content_type = content_type",
    "xapi_statements": "voided = voided",
}


def _insert(table: str, row: dict[str, Any]) -> sql.Composed:
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
    )


def _where(table: str) -> sql.Composed:
    return sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in KEYS[table])


def _build_world(factory: Factory, populated: bool) -> World:
    home = factory.org("Matrix home")
    away = factory.org("Matrix away")
    world = World(org={"home": home.id, "away": away.id}, user={}, org_of={}, role_of={}, ingest_client="")
    for org_id, users in ((home.id, HOME_USERS), (away.id, AWAY_USERS)):
        for key, role in users.items():
            world.user[key] = factory.user(org_id, [role], name=key)
            world.org_of[key] = org_id
            world.role_of[key] = role
    world.ingest_client = factory.service_client(f"matrix-ingest-{uuid.uuid4().hex}", ["ingest"], home.id)
    for subject in SUBJECTS:
        report = BUILDERS["reports"](world, subject)
        factory.sql(_insert("reports", report), list(report.values()))
        world.reports[subject] = report["id"]
        world.rows[("reports", subject)] = report
    if not populated:
        return world
    world.rows[("organizations", "home")] = {"id": home.id}
    world.rows[("organizations", "away")] = {"id": away.id}
    for subject in SUBJECTS:
        world.rows[("users", subject)] = {"id": world.user[subject]}
    for table in TABLE_ORDER:
        if table == "reports":
            continue
        for subject in ("home", "away") if table in ORG_TABLES else SUBJECTS:
            row = BUILDERS[table](world, subject)
            factory.sql(_insert(table, row), list(row.values()))
            world.rows[(table, subject)] = row
    return world


@dataclass
class Worlds:
    populated: World
    blank: World
    directory_client: str


@pytest.fixture(scope="module")
def worlds(owner_url: str) -> Iterator[Worlds]:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        factory = Factory(conn)
        directory = factory.service_client(f"matrix-directory-{uuid.uuid4().hex}", ["directory"], None)
        # The populated pair's trainer_assignments rows include (trainer, assigned); the blank
        # pair has none, which no INSERT policy depends on.
        populated = _build_world(factory, populated=True)
        blank = _build_world(factory, populated=False)
        yield Worlds(populated, blank, directory)


@pytest.fixture(scope="module")
def conn(runtime_url: str) -> Iterator[psycopg.Connection]:
    """One runtime connection for every cell (each cell is its own transaction)."""
    with psycopg.connect(runtime_url, prepare_threshold=None, autocommit=True) as c:
        yield c


def begin(conn: psycopg.Connection, world: World, directory_client: str, actor: str) -> None:
    """Open a transaction with the actor's context, exactly as a request would."""
    if actor in USER_ACTORS:
        caller = db.as_user(world.user[actor], actor)(conn)
        assert caller.active_role == actor
    elif actor == "ingest":
        db.as_service(world.ingest_client, "ingest", world.org["home"])(conn)
    elif actor == "directory":
        db.as_service(directory_client, "directory", None)(conn)
    else:
        conn.autocommit = True
        conn.execute("BEGIN")
    assert conn.info.transaction_status == pq.TransactionStatus.INTRANS


def _subject(table: str, actor: str, target: str) -> str:
    if table in ORG_TABLES:
        return "home" if target == "own" else "away"
    return {"own": actor, "peer": "peer", "assigned": "assigned", "other": "stranger"}[target]


def run_cell(conn: psycopg.Connection, worlds: Worlds, table: str, actor: str, command: str, target: str) -> bool:
    """Run one cell in its own transaction, roll it back, and say whether it was allowed."""
    world = worlds.blank if command == "INSERT" else worlds.populated
    subject = _subject(table, actor, target)
    begin(conn, world, worlds.directory_client, actor)
    try:
        if command == "INSERT":
            row = BUILDERS[table](world, subject)
            conn.execute(_insert(table, row), list(row.values()))
            return True
        row = world.rows[(table, subject)]
        key = [row[k] for k in KEYS[table]]
        if command == "SELECT":
            found = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), _where(table)), key
            ).fetchone()
            assert found is not None
            return bool(found[0] == 1)
        if command == "UPDATE":
            statement = sql.SQL("UPDATE {} SET {} WHERE {}").format(
                sql.Identifier(table), sql.SQL(UPDATES[table]), _where(table))
        else:
            statement = sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(table), _where(table))
        return conn.execute(statement, key).rowcount == 1
    except errors.InsufficientPrivilege:
        return False
    finally:
        conn.rollback()


@pytest.mark.parametrize(
    ("cell", "allowed"), CELLS, ids=["-".join(key) + ("-allow" if ok else "-deny") for key, ok in CELLS]
)
def test_cell(
    conn: psycopg.Connection, worlds: Worlds, cell: tuple[str, str, str, str], allowed: bool
) -> None:
    table, actor, command, target = cell
    assert run_cell(conn, worlds, table, actor, command, target) is allowed


def test_matrix_covers_every_tenant_table_actor_and_target(conn: psycopg.Connection) -> None:
    conn.execute("BEGIN")
    try:
        tables = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND c.relname <> 'alembic_version'"
        )}
    finally:
        conn.rollback()
    assert {t for t, *_ in EXPECTED} == tables
    for table in tables:
        for actor in ACTORS:
            for command in COMMANDS:
                for target in TARGETS:
                    exists = (target in ("own", "other")) if table in ORG_TABLES else (
                        actor in USER_ACTORS or target != "own")
                    if (table, command, target) in NO_CELL:
                        exists = False
                    assert (EXPECTED[(table, actor, command, target)] is not None) is exists, (
                        table, actor, command, target)


def _visible(conn: psycopg.Connection, query: str, params: tuple[Any, ...] = ()) -> set[Any]:
    return {r[0] for r in conn.execute(query, params)}


def test_trainer_reads_only_assigned_learners(conn: psycopg.Connection, worlds: Worlds) -> None:
    w = worlds.populated
    begin(conn, w, worlds.directory_client, "trainer")
    try:
        home = w.org["home"]
        assert _visible(conn, "SELECT id FROM users") == {w.user["trainer"], w.user["assigned"]}
        for table in ("analytics", "gamification", "learning_events", "learner_daily_activity"):
            seen = _visible(conn, f"SELECT user_id FROM {table} WHERE organization_id = %s", (home,))
            assert seen == {w.user["trainer"], w.user["assigned"]}, table
        # Points, reports and links of an assigned learner stay private to the learner.
        for table in ("points_ledger", "reports", "report_links"):
            assert _visible(conn, f"SELECT user_id FROM {table}") == {w.user["trainer"]}, table
    finally:
        conn.rollback()


def test_cohort_rollups_are_read_by_their_trainer_and_the_org_admin_only(
    conn: psycopg.Connection, worlds: Worlds, owner_url: str
) -> None:
    """Weekly rows of the organization and of two cohorts (the acting trainer's and coach's)."""
    w = worlds.populated
    home = w.org["home"]
    with psycopg.connect(owner_url, autocommit=True) as owner:
        factory = Factory(owner)
        for trainer in (None, w.user["trainer"], w.user["coach"]):
            row = _rollup_row(home, trainer, "weekly")
            factory.sql(_insert("population_rollups", row), list(row.values()))
    seen: dict[str, set[Any]] = {}
    for actor in ("learner", "trainer", "org_admin"):
        begin(conn, w, worlds.directory_client, actor)
        try:
            seen[actor] = _visible(conn, "SELECT trainer_id FROM population_rollups WHERE granularity = 'weekly'")
        finally:
            conn.rollback()
    assert seen == {"learner": set(), "trainer": {None, w.user["trainer"]},
                    "org_admin": {None, w.user["trainer"], w.user["coach"]}}


def test_org_admin_never_reads_another_organization(conn: psycopg.Connection, worlds: Worlds) -> None:
    w = worlds.populated
    begin(conn, w, worlds.directory_client, "org_admin")
    try:
        assert _visible(conn, "SELECT id FROM organizations") == {w.org["home"]}
        for table in sorted(set(KEYS) - {"organizations", "service_clients", "xapi_credentials"}):
            orgs = _visible(conn, f"SELECT DISTINCT organization_id FROM {table}")
            assert orgs <= {w.org["home"]}, table
        # Not vacuous: the admin does read its own organization's rows.
        assert _visible(conn, "SELECT count(*) FROM analytics") == {len(SUBJECTS) - 1}
        assert _visible(conn, "SELECT count(*) FROM aggregated_analytics") == {1}
    finally:
        conn.rollback()


def test_directory_client_bound_to_an_organization_stays_in_it(
    conn: psycopg.Connection, worlds: Worlds, owner_url: str
) -> None:
    w = worlds.populated
    with psycopg.connect(owner_url, autocommit=True) as owner:
        bound = Factory(owner).service_client(f"matrix-dir-bound-{uuid.uuid4().hex}", ["directory"], w.org["home"])
    db.as_service(bound, "directory", None)(conn)
    try:
        assert _visible(conn, "SELECT id FROM organizations") == {w.org["home"]}
        assert w.user["stranger"] not in _visible(conn, "SELECT id FROM users")
        assert w.user["peer"] in _visible(conn, "SELECT id FROM users")
        assert conn.execute("UPDATE users SET name = name WHERE id = %s", (w.user["stranger"],)).rowcount == 0
        assert conn.execute("DELETE FROM trainer_assignments WHERE learner_id = %s",
                            (w.user["stranger"],)).rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO users (organization_id, email, name, roles) VALUES (%s, %s, 'x', '{learner}')",
                (w.org["away"], f"{uuid.uuid4().hex}@example.test"),
            )
    finally:
        conn.rollback()


def test_owner_without_maintenance_sees_nothing(owner_url: str, worlds: Worlds) -> None:
    home = worlds.populated.org["home"]
    with psycopg.connect(owner_url) as owner:
        for table in KEYS:
            assert owner.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        with pytest.raises(errors.InsufficientPrivilege):
            owner.execute("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'x', 0.5)",
                          (home,))
        owner.rollback()
        owner.execute("SELECT app.begin_maintenance()")
        assert owner.execute("SELECT count(*) FROM analytics WHERE organization_id = %s",
                             (home,)).fetchone() == (len(SUBJECTS) - 1,)
        owner.rollback()
        # Maintenance ends with its transaction.
        assert owner.execute("SELECT count(*) FROM analytics").fetchone() == (0,)
        owner.rollback()


def _partitions(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent IN ('public.learning_events'::regclass, 'public.aggregated_analytics'::regclass, "
        "'public.population_rollups'::regclass) "
        "ORDER BY 1"
    )]


def test_runtime_cannot_reach_the_view_partitions_or_maintenance(conn: psycopg.Connection) -> None:
    conn.execute("BEGIN")
    names = _partitions(conn)
    conn.rollback()
    assert any(n.startswith("learning_events_m") for n in names)
    assert any(n.startswith("aggregated_analytics_y") for n in names)
    assert any(n.startswith("population_rollups_y") for n in names)
    for relation in ["comparison_aggregates", *names]:
        conn.execute("BEGIN")
        try:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(relation)))
        finally:
            conn.rollback()
    conn.execute("BEGIN")
    try:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT app.begin_maintenance()")
    finally:
        conn.rollback()


def test_every_table_forces_row_level_security(conn: psycopg.Connection) -> None:
    conn.execute("BEGIN")
    try:
        rows = conn.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ).fetchall()
        # alembic's bookkeeping table is no tenant table: the runtime role has no privilege on it.
        alembic = conn.execute(
            "SELECT has_table_privilege('alembic_version', 'SELECT, INSERT, UPDATE, DELETE')"
        ).fetchone()
    finally:
        conn.rollback()
    assert alembic == (False,)
    checked = [(name, rls, force) for name, rls, force in rows if name != "alembic_version"]
    assert len(checked) > len(KEYS)  # partitions included
    assert [name for name, rls, force in checked if not (rls and force)] == []

