"""Tenant isolation through HTTP: every route of template.yaml, every acting role of organization
A, against its own rows, another user's of A, organization B's and ids that exist nowhere.

One gateway (`local.server`, tests/support/gateway.py) on a free port serves the test
database; S3 is the local S3 (local/s3.py) on another free port. The data is made the way clients make it:
organizations, users and service clients by the owner (as the platform's provisioning would),
learning events through POST /v1/events by each organization's ingest service (so analytics,
points and badges are computed by the service), reports through POST /v1/reports (files in S3),
a refreshed peer-comparison view and the population rollups of the last three days.

Organization A: learner-01..12 (01..04 assigned to `trainer`), `bare_trainer` with no learner,
`org_admin` (its only org admin), a spare trainer and learner for assignment writes, an ingest and
a directory service bound to A. Organization B: learner-01..11 (01..03 assigned to its trainer),
its admin and its own ingest service. Both have at least 10 learners with recent
analytics, so a peer group that mixed the two would show a different size.

ROUTES is the table: one entry per route of the template (a route without one fails
test_every_route_of_the_template_has_an_entry). For each route and acting role of A (learner,
trainer, bare_trainer, org_admin, ingest, directory) the entry builds the requests for each
target: `own` (the caller's own row; for a service, a user of its organization), `assigned` (a
trainer's assigned learner), `peer` (another user of A; not assigned, for a trainer), `foreign`
(organization B's ids) and `absent` (random ids). Routes without an id name the target in every
other place a client could: the X-Organization-Id header and userId/organizationId query
parameters. For each case:

- the status is the one the table says (so a refusal or a success cannot silently change);
- `foreign` and `absent` answer identically: the same status and the same JSON body except the
  requestId (404 for both hidden and absent rows, never a tell-tale 403, count or message);
- no answer to an A caller contains any id, email or name of B (the raw text is scanned);
- after every write, B's rows (a digest of every tenant table, as the owner) and B's report
  files in S3 are unchanged, and no random id has come into existence.

The answers of lists and counts (reports, users, leaderboard, aggregates, comparison, learners,
cohorts) are checked
against the database in the entries' `check` functions (on every 2xx answer, so a header or query
parameter naming B changes nothing) and in test_lists_and_counts_hold_only_org_a. Two more tests
cover ids that travel in bodies beyond the table: event ids of another user (ingest's
idempotency), and the user ids and emails of B sent to A's directory service.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from local import s3 as local_s3
from local import stack, template, tokens
from ms8.repositories import rollups
from tests.support.factories import Factory, Org
from tests.support.gateway import RunningGateway, gateway_process
from tests.support.jobs import refresh_pending

ACTORS = ("learner", "trainer", "bare_trainer", "org_admin", "ingest", "directory")
USERS = ("learner", "trainer", "bare_trainer", "org_admin")
SERVICES = ("ingest", "directory")
TARGETS = ("own", "assigned", "peer", "foreign", "absent")
A_LEARNERS = 12
B_LEARNERS = 11
ASSIGNED = 4  # a-learner-01..04 are the trainer's
ACTOR_KEY = {"learner": "learner-01", "trainer": "trainer", "bare_trainer": "bare_trainer", "org_admin": "org_admin"}
NOW = datetime.now(UTC)
TODAY = NOW.date()


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        q = f"?{urlencode(self.query)}" if self.query else ""
        h = "".join(f" [{k}: {v}]" for k, v in self.headers)
        b = f" {json.dumps(self.body)[:300]}" if self.body is not None else ""
        return f"{self.method} {self.path}{q}{h}{b}"


@dataclass
class Answer:
    status: int
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def code(self) -> str | None:
        body = self.json
        return body.get("error", {}).get("code") if isinstance(body, dict) else None


class Client:
    """One keep-alive connection to the gateway (reopened if the server closed it)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn: http.client.HTTPConnection | None = None

    def send(self, req: Req, token: str, extra_headers: dict[str, str] | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {token}", **(extra_headers or {}), **dict(req.headers)}
        data = None
        if req.body is not None:
            data = json.dumps(req.body)
            headers["Content-Type"] = "application/json"
        target = req.path + (f"?{urlencode(req.query)}" if req.query else "")
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(req.method, target, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.close()
                return Answer(resp.status, raw.decode())
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- the two organizations -------------------------------------------------------------------


@dataclass
class World:
    client: Client
    factory: Factory
    bucket: Any  # a boto3 S3 client on the local server
    bucket_name: str
    gateway: RunningGateway
    a: Org
    b: Org
    ingest_a: str
    directory_a: str
    ingest_b: str
    a_name: str
    reports: dict[str, UUID] = field(default_factory=dict)  # user key ("a:learner-01") -> a report of theirs
    b_events: list[tuple[UUID, str]] = field(default_factory=list)  # (eventId, occurredAt) of B's events
    a_events: dict[str, tuple[UUID, str]] = field(default_factory=dict)  # an event of each learner of A
    markers: list[str] = field(default_factory=list)  # every id, email and name of B, lower case
    b_digest: dict[str, str] = field(default_factory=dict)
    absent_ids: list[UUID] = field(default_factory=list)

    # identities

    def actor_id(self, actor: str) -> UUID:
        return self.a.users[ACTOR_KEY[actor]]

    def token(self, actor: str) -> str:
        if actor == "ingest":
            return tokens.service_token(self.ingest_a, ["ingest"])
        if actor == "directory":
            return tokens.service_token(self.directory_a, ["directory"])
        return tokens.user_token(self.actor_id(actor))

    def send(self, actor: str, req: Req) -> Answer:
        return self.client.send(req, self.token(actor))

    # targets

    def absent(self) -> UUID:
        new = uuid.uuid4()
        self.absent_ids.append(new)
        return new

    def uid(self, actor: str, target: str) -> UUID | None:
        """The user a target names for this actor (None: no such target for this actor)."""
        if target == "own":
            return self.a.users["learner-03"] if actor in SERVICES else self.actor_id(actor)
        if target == "assigned":
            return self.a.users["learner-02"] if actor == "trainer" else None
        if target == "peer":
            return self.a.users[{"learner": "learner-02", "trainer": "learner-05", "bare_trainer": "learner-05",
                                 "org_admin": "learner-06"}.get(actor, "learner-07")]
        if target == "foreign":
            return self.b.users["learner-01"]
        return self.absent()

    def uids(self, actor: str, target: str) -> list[UUID] | None:
        """The users a target names: B's learner, trainer and admin for `foreign`, as many random
        ids for `absent`, else the one user of `uid`."""
        if target == "foreign":
            return [self.b.users[k] for k in ("learner-01", "trainer", "admin")]
        if target == "absent":
            return [self.absent() for _ in range(3)]
        user = self.uid(actor, target)
        return None if user is None else [user]

    def org_id(self, target: str) -> UUID | None:
        if target in ("own", "peer"):
            return self.a.id
        if target == "foreign":
            return self.b.id
        if target == "absent":
            return self.absent()
        return None

    def report_ids(self, actor: str, target: str) -> list[UUID] | None:
        if target == "foreign":
            return [self.reports["b:learner-01"], self.reports["b:admin"]]
        if target == "absent":
            return [self.absent(), self.absent()]
        if actor in SERVICES:
            return [self.reports["a:learner-01"]] if target == "own" else None
        user = self.uid(actor, target)
        if user is None:
            return None
        key = next(k for k, v in self.a.users.items() if v == user)
        return [self.reports[f"a:{key}"]]

    # the database, as the owner

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.factory.sql(statement, params)

    def version(self, table: str, row_id: UUID) -> int:
        rows = self.sql(f"SELECT source_version FROM {table} WHERE id = %s", (row_id,))
        return int(rows[0][0])

    def disposable_learner(self) -> UUID:
        """A learner of A that a test may erase."""
        return self.factory.user(self.a.id, ["learner"], name="a-disposable")


TENANT_TABLES = ("users", "user_tombstones", "analytics", "gamification", "points_ledger", "learning_events",
                 "learner_daily_activity", "reports", "report_links", "aggregated_analytics", "population_rollups",
                 "trainer_assignments", "skill_targets", "service_clients")


def org_digest(w: World, org_id: UUID) -> dict[str, str]:
    """Every row of the organization in every tenant table (one md5 per table), and its report
    files in S3 (key, size and ETag), as the owner sees them."""
    selects = [f"SELECT '{t}', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
               f"FROM {t} x WHERE organization_id = %(org)s" for t in TENANT_TABLES]
    selects.append("SELECT 'organizations', md5(coalesce(string_agg(x::text, '|'), '')) "
                   "FROM organizations x WHERE id = %(org)s")
    rows = w.sql(" UNION ALL ".join(selects), {"org": org_id})
    digest = {r[0]: r[1] for r in rows}
    listed = w.bucket.list_objects_v2(Bucket=w.bucket_name, Prefix=f"reports/{org_id}/").get("Contents", [])
    digest["s3"] = json.dumps(sorted((o["Key"], o["Size"], o["ETag"]) for o in listed))
    return digest


def b_markers(w: World) -> list[str]:
    """Every id, email and name of organization B (lower case): none may reach an A caller."""
    org = w.b.id
    rows = w.sql(
        """
        SELECT id::text FROM organizations WHERE id = %(o)s
        UNION ALL SELECT name FROM organizations WHERE id = %(o)s
        UNION ALL SELECT id::text FROM users WHERE organization_id = %(o)s
        UNION ALL SELECT email FROM users WHERE organization_id = %(o)s
        UNION ALL SELECT name FROM users WHERE organization_id = %(o)s
        UNION ALL SELECT id::text FROM analytics WHERE organization_id = %(o)s
        UNION ALL SELECT id::text FROM gamification WHERE organization_id = %(o)s
        UNION ALL SELECT event_id::text FROM learning_events WHERE organization_id = %(o)s
        UNION ALL SELECT id::text FROM reports WHERE organization_id = %(o)s
        UNION ALL SELECT s3_key FROM reports WHERE organization_id = %(o)s AND s3_key IS NOT NULL
        UNION ALL SELECT id::text FROM report_links WHERE organization_id = %(o)s
        UNION ALL SELECT id::text FROM aggregated_analytics WHERE organization_id = %(o)s
        UNION ALL SELECT trainer_id::text FROM population_rollups WHERE organization_id = %(o)s
          AND trainer_id IS NOT NULL
        UNION ALL SELECT client_id FROM service_clients WHERE organization_id = %(o)s
        """,
        {"o": org},
    )
    found = {str(r[0]).lower() for r in rows}
    found |= {UUID(m).hex for m in list(found) if _is_uuid(m)}
    return sorted(found)


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def _events(org: Org, keys: list[str]) -> list[dict[str, Any]]:
    """Five days of activity per learner: completions, a scored assessment and a session a day."""
    out = []
    for n, key in enumerate(keys):
        for d in range(1, 6):
            at = datetime.combine(TODAY - timedelta(days=d), datetime.min.time(), UTC) + timedelta(hours=10)
            base = {"userId": str(org.users[key]), "skills": ["sql"]}
            out += [
                {**base, "eventId": str(uuid.uuid4()), "verb": "completed", "objectId": f"course-{d}",
                 "objectType": "course", "occurredAt": at.isoformat()},
                {**base, "eventId": str(uuid.uuid4()), "verb": "passed", "objectId": f"quiz-{d}",
                 "objectType": "assessment", "occurredAt": (at + timedelta(minutes=20)).isoformat(),
                 "result": {"score": round(0.4 + 0.04 * n + 0.01 * d, 3), "success": True}},
                {**base, "eventId": str(uuid.uuid4()), "verb": "session", "objectId": "app",
                 "objectType": "session", "occurredAt": (at + timedelta(minutes=40)).isoformat(),
                 "result": {"durationSeconds": 1200 + 60 * n}},
            ]
    return out


@pytest.fixture(scope="module")
def world(owner_url: str, database: str, gateway_database_url: str) -> Iterator[World]:
    store = local_s3.S3(port=0, data_dir=None)
    bucket_name = f"ms8-isolation-{uuid.uuid4().hex[:10]}"
    endpoint = store.start(bucket_name)
    client: Client | None = None
    try:
        env = stack.function_env(endpoint, db=database)
        env["DATABASE_URL"] = gateway_database_url  # direct, then through PgBouncer (conftest)
        env["REPORTS_BUCKET"] = bucket_name
        bucket = store.client()
        with psycopg.connect(owner_url, autocommit=True) as conn, gateway_process(env, workers=2) as running:
            client = Client(running.url)
            yield _build(client, Factory(conn), bucket, bucket_name, running)
    finally:
        if client is not None:
            client.close()
        store.stop()


def _build(client: Client, factory: Factory, bucket: Any, bucket_name: str, running: RunningGateway) -> World:
    tag = uuid.uuid4().hex[:8]
    a_users: dict[str, list[str]] = {f"learner-{i:02d}": ["learner"] for i in range(1, A_LEARNERS + 1)}
    a_users |= {"trainer": ["trainer"], "bare_trainer": ["trainer"], "org_admin": ["org_admin"],
                "spare_trainer": ["trainer"], "spare_learner": ["learner"]}
    a_name = f"Isolation Acme {tag}"
    a = factory.org(a_name)
    for key, roles in a_users.items():
        a.users[key] = factory.user(a.id, roles, name=f"a-{key}-{tag}")
    b = factory.org(f"Isolation Globex {tag}")
    for key, roles in ({f"learner-{i:02d}": ["learner"] for i in range(1, B_LEARNERS + 1)}
                       | {"trainer": ["trainer"], "admin": ["org_admin"]}).items():
        b.users[key] = factory.user(b.id, roles, name=f"globex-{key}-{tag}")
    for i in range(1, ASSIGNED + 1):
        factory.assign(a.id, a.users["trainer"], a.users[f"learner-{i:02d}"])
    for i in range(1, 4):
        factory.assign(b.id, b.users["trainer"], b.users[f"learner-{i:02d}"])
    factory.sql("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.8), "
                "(%s, 'sql', 0.6)", (a.id, b.id))
    w = World(
        client=client, factory=factory, bucket=bucket, bucket_name=bucket_name, gateway=running, a=a, b=b,
        ingest_a=factory.service_client(f"iso-ingest-a-{tag}", ["ingest"], a.id),
        directory_a=factory.service_client(f"iso-directory-a-{tag}", ["directory"], a.id),
        ingest_b=factory.service_client(f"iso-ingest-b-{tag}", ["ingest"], b.id),
        a_name=a_name,
    )
    # Activity through the API, as each organization's platform sends it.
    for org, client_id, count in ((a, w.ingest_a, A_LEARNERS), (b, w.ingest_b, B_LEARNERS)):
        events = _events(org, [f"learner-{i:02d}" for i in range(1, count + 1)])
        answer = client.send(Req("POST", "/v1/events", {"events": events}), tokens.service_token(client_id, ["ingest"]))
        assert answer.status == 200, answer.text
        assert answer.json["inserted"] == len(events)
        if org is b:
            w.b_events = [(UUID(e["eventId"]), e["occurredAt"]) for e in events]
        else:
            by_user = {v: k for k, v in a.users.items()}
            w.a_events = {by_user[UUID(e["userId"])]: (UUID(e["eventId"]), e["occurredAt"]) for e in events}
    refresh_pending()  # the every-minute job: the snapshots, points and badges of those learners
    # Reports through the API (files in S3), one per user a target may name.
    owners = [(a, "a", k) for k in ("learner-01", "learner-02", "learner-03", "learner-05", "learner-06",
                                    "learner-07", "trainer", "bare_trainer", "org_admin")]
    owners += [(b, "b", "learner-01"), (b, "b", "admin")]
    for org, prefix, key in owners:
        fmt = "json" if prefix == "b" else "csv"
        answer = client.send(Req("POST", "/v1/reports", {"format": fmt}), tokens.user_token(org.users[key]))
        assert answer.status == 201, answer.text
        w.reports[f"{prefix}:{key}"] = UUID(answer.json["id"])
    # The old organization history: three daily rows each, of different sizes.
    for org, users in ((a, A_LEARNERS), (b, B_LEARNERS)):
        for d in range(1, 4):
            factory.sql(
                "INSERT INTO aggregated_analytics (organization_id, granularity, role, analytics_type, "
                "period_start, period_end, user_count, data) VALUES (%s, 'daily', 'learner', 'engagement', %s, %s, "
                "%s, %s)",
                (org.id, TODAY - timedelta(days=d), TODAY - timedelta(days=d - 1), users,
                 Jsonb({"metric": "engagement", "avg": 0.5, "p25": 0.3, "p50": 0.5, "p75": 0.7})),
            )
    # Population rollups of the last three days, by the rollup job's statement (both organizations,
    # both cohorts with learners).
    with factory.conn.transaction():
        factory.conn.execute("SELECT app.begin_maintenance()")
        rollups.rollup(factory.conn, "daily", TODAY - timedelta(days=3), TODAY)
    factory.refresh_comparison()
    w.markers = b_markers(w)
    w.b_digest = org_digest(w, b.id)
    return w


# --- checks of successful answers -------------------------------------------------------------


def _org_learners_with_points(w: World, org_id: UUID) -> int:
    return int(w.sql(
        "SELECT count(*) FROM gamification g JOIN users u ON u.id = g.user_id WHERE g.organization_id = %s "
        "AND g.role = 'learner' AND g.points > 0 AND 'learner' = ANY (u.roles)", (org_id,))[0][0])


def check_me(w: World, actor: str, req: Req, answer: Answer) -> None:
    body = answer.json
    assert (body["userId"], body["organizationId"]) == (str(w.actor_id(actor)), str(w.a.id))


def check_own_items(w: World, actor: str, req: Req, answer: Answer) -> None:
    assert all(item["userId"] == str(w.actor_id(actor)) for item in answer.json["items"]), answer.text


def check_summary(w: World, actor: str, req: Req, answer: Answer) -> None:
    role = "org_admin" if actor == "org_admin" else "trainer" if "trainer" in actor else "learner"
    count = w.sql("SELECT count(*) FROM analytics WHERE user_id = %s AND role = %s", (w.actor_id(actor), role))[0][0]
    assert answer.json["count"] == count


def check_comparison(w: World, actor: str, req: Req, answer: Answer) -> None:
    role = answer.json["role"]
    groups = dict(w.sql("SELECT analytics_type, user_count FROM comparison_aggregates WHERE organization_id = %s "
                        "AND role = %s", (w.a.id, role)))
    for item in answer.json["items"]:
        if item["available"]:
            assert item["peers"]["userCount"] == groups[item["analyticsType"]], item
        else:
            assert item["analyticsType"] not in groups, item
    if role == "learner":
        assert any(item["available"] for item in answer.json["items"]), "a group of A's 12 learners is shown"


def check_aggregates(w: World, actor: str, req: Req, answer: Answer) -> None:
    """A trainer's own cohort (none for the bare trainer), the org admin's organization."""
    cohort = None if actor == "org_admin" else w.actor_id(actor)
    expected = w.sql("SELECT period_start::text, learners FROM population_rollups WHERE organization_id = %s "
                     "AND trainer_id IS NOT DISTINCT FROM %s AND granularity = 'daily' ORDER BY period_start",
                     (w.a.id, cohort))
    assert [(i["periodStart"], i["learners"]) for i in answer.json["items"]] == [tuple(r) for r in expected]
    assert len(expected) == (0 if actor == "bare_trainer" else 3)


def check_learners(w: World, actor: str, req: Req, answer: Answer) -> None:
    """A trainer's assigned learners, the org admin's learners of A."""
    if actor == "org_admin":
        expected = w.sql("SELECT id::text FROM users WHERE organization_id = %s AND 'learner' = ANY (roles)",
                         (w.a.id,))
    else:
        expected = w.sql("SELECT learner_id::text FROM trainer_assignments WHERE trainer_id = %s",
                         (w.actor_id(actor),))
    assert sorted(i["userId"] for i in answer.json["items"]) == sorted(r[0] for r in expected)
    assert len(expected) >= {"org_admin": A_LEARNERS, "trainer": ASSIGNED, "bare_trainer": 0}[actor]


def check_learner(w: World, actor: str, req: Req, answer: Answer) -> None:
    assert answer.json["learner"]["userId"] == req.path.rsplit("/", 1)[1]
    assert len(answer.json["weeks"]) == 12


def check_cohorts(w: World, actor: str, req: Req, answer: Answer) -> None:
    expected = w.sql("SELECT id::text FROM users WHERE organization_id = %s AND 'trainer' = ANY (roles)", (w.a.id,))
    assert sorted(i["trainerId"] for i in answer.json["items"]) == sorted(r[0] for r in expected)
    cohort = next(i for i in answer.json["items"] if i["trainerId"] == str(w.a.users["trainer"]))
    assert cohort["learners"] == ASSIGNED


def check_users_page(w: World, actor: str, req: Req, answer: Answer) -> None:
    assert answer.json["items"], answer.text
    assert {i["organizationId"] for i in answer.json["items"]} == {str(w.a.id)}


def check_leaderboard(w: World, actor: str, req: Req, answer: Answer) -> None:
    assert answer.json["participants"] == _org_learners_with_points(w, w.a.id)


def check_report_created(w: World, actor: str, req: Req, answer: Answer) -> None:
    body = answer.json
    assert (body["organizationId"], body["userId"]) == (str(w.a.id), str(w.actor_id(actor)))


def check_report_list(w: World, actor: str, req: Req, answer: Answer) -> None:
    items = answer.json["items"]
    assert items and {i["organizationId"] for i in items} == {str(w.a.id)}
    if actor != "org_admin":
        assert {i["userId"] for i in items} == {str(w.actor_id(actor))}


def check_user_analytics(w: World, actor: str, req: Req, answer: Answer) -> None:
    user = req.path.split("/")[3]
    items = answer.json["items"]
    assert {i["userId"] for i in items} <= {user}, answer.text
    if any(k.startswith("learner-") and str(v) == user for k, v in w.a.users.items()):
        assert items, f"{req.describe()}: a learner of A with activity has analytics"


def check_report_read(w: World, actor: str, req: Req, answer: Answer) -> None:
    body = answer.json
    assert (body["id"], body["organizationId"]) == (req.path.rsplit("/", 1)[1], str(w.a.id))
    assert body["download"]["url"].split("?")[0].endswith(f"{body['id']}.csv"), body["download"]


# --- the table ---------------------------------------------------------------------------------

Status = int | tuple[int, ...]


@dataclass(frozen=True)
class Exp:
    """Expected statuses: own, peer, absent (foreign must answer exactly as absent), assigned
    (the trainer's learner; None: not a target of this route). A tuple gives one status per
    request of the target, in order."""

    own: Status
    peer: Status | None
    absent: Status
    assigned: Status | None = None

    def status(self, target: str) -> Status | None:
        return {"own": self.own, "peer": self.peer, "absent": self.absent, "foreign": self.absent,
                "assigned": self.assigned}[target]


def denied(status: int) -> Exp:
    return Exp(status, status, status, status)


Builder = Callable[[World, str, str], list[Req] | None]


@dataclass(frozen=True)
class Entry:
    build: Builder
    expect: dict[str, Exp]
    check: Callable[[World, str, Req, Answer], None] | None = None  # on every 2xx answer
    volatile: frozenset[str] = frozenset()  # keys that differ between two equal calls


def idless(method: str, path: str, body: Any = None, query: tuple[tuple[str, str], ...] = ()) -> Builder:
    """A route that names no id: the target goes where a client could still put it (the
    X-Organization-Id header, userId and organizationId query parameters); `own` sends none."""

    def build(w: World, actor: str, target: str) -> list[Req] | None:
        if target == "own":
            return [Req(method, path, body, query=query)]
        user, org = w.uid(actor, target), w.org_id(target)
        if user is None or org is None:
            return None
        return [Req(method, path, body, (("X-Organization-Id", str(org)),),
                    (*query, ("userId", str(user)), ("organizationId", str(org))))]

    return build


def with_user_path(method: str, template: str) -> Builder:
    def build(w: World, actor: str, target: str) -> list[Req] | None:
        users = w.uids(actor, target)
        return None if users is None else [Req(method, template.format(u)) for u in users]

    return build


def _for_users(w: World, actor: str, target: str, method: str, path: str,
               body: Callable[[UUID], dict[str, Any]]) -> list[Req] | None:
    """A write naming the target users in its body; a service also names the target's
    organization in X-Organization-Id (for a user of its own organization)."""
    users = w.uids(actor, target)
    if users is None:
        return None
    reqs = [Req(method, path, body(u)) for u in users]
    if target in ("foreign", "absent") and actor in SERVICES:
        own = w.uid(actor, "own")
        assert own is not None
        reqs.append(Req(method, path, body(own), (("X-Organization-Id", str(w.org_id(target))),)))
    return reqs


def analytics_write(w: World, actor: str, target: str) -> list[Req] | None:
    return _for_users(w, actor, target, "PUT", "/v1/analytics", lambda u: {"items": [
        {"analyticsType": "engagement", "data": {"engagement": 0.5}, "userId": str(u)}]})


def events_write(w: World, actor: str, target: str) -> list[Req] | None:
    return _for_users(w, actor, target, "POST", "/v1/events", lambda u: {"events": [
        {"eventId": str(uuid.uuid4()), "userId": str(u), "verb": "progressed", "objectId": "course-iso",
         "objectType": "course", "occurredAt": (NOW - timedelta(hours=1)).isoformat()}]})


def erase(w: World, actor: str, target: str) -> list[Req] | None:
    users = [w.disposable_learner()] if target == "peer" else w.uids(actor, target)
    return None if users is None else [Req("DELETE", f"/v1/users/{u}") for u in users]


def report_read(w: World, actor: str, target: str) -> list[Req] | None:
    ids = w.report_ids(actor, target)
    return None if ids is None else [Req("GET", f"/v1/reports/{i}") for i in ids]


def organization_write(w: World, actor: str, target: str) -> list[Req] | None:
    if target in ("peer", "assigned"):
        return None  # an organization has no "other user"
    org = w.org_id(target)
    if target == "own":
        version = w.version("organizations", w.a.id) + 1
        return [Req("PUT", f"/v1/organizations/{org}", {"name": w.a_name, "version": version})]
    return [Req("PUT", f"/v1/organizations/{org}", {"name": "Taken Over", "version": 10**15})]


def user_write(w: World, actor: str, target: str) -> list[Req] | None:
    """PUT /v1/users/{userId}: own and peer re-send a user of A as it is (a newer version);
    foreign and absent name the organization in the body (B's or a random one) for a new user.
    A user id or an email of B: test_directory_ids_and_emails_of_org_b."""
    if target in ("own", "peer"):
        user = w.uid(actor, target)
        assert user is not None
        row = w.sql("SELECT email, name, roles, timezone, source_version FROM users WHERE id = %s", (user,))[0]
        return [Req("PUT", f"/v1/users/{user}", {"organizationId": str(w.a.id), "email": row[0], "name": row[1],
                                                   "roles": row[2], "timezone": row[3], "version": row[4] + 1})]
    if target == "assigned":
        return None
    org = w.org_id(target)
    fresh = w.absent()
    return [Req("PUT", f"/v1/users/{fresh}", {"organizationId": str(org), "email": f"{fresh.hex}@example.test",
                                               "name": "Newcomer", "roles": ["learner"], "version": 1})]


def roles_write(w: World, actor: str, target: str) -> list[Req] | None:
    """Each user's roles as they are (a random id: a learner's)."""
    users = w.uids(actor, target)
    if users is None:
        return None
    reqs = []
    for user in users:
        held = w.sql("SELECT roles FROM users WHERE id = %s", (user,))
        reqs.append(Req("PUT", f"/v1/users/{user}/roles", {"roles": held[0][0] if held else ["learner"]}))
    return reqs


def assignment(method: str) -> Builder:
    """The spare trainer and learner of A (own), the spare trainer and another learner (peer);
    B's trainer and/or learner (foreign) against random ids in the same places (absent)."""

    def build(w: World, actor: str, target: str) -> list[Req] | None:
        t, learner = w.a.users["spare_trainer"], w.a.users["spare_learner"]
        if target == "own":
            pairs = [(t, learner)]
        elif target == "peer":
            pairs = [(t, w.a.users["learner-07"])]
        elif target == "foreign":
            bt, bl = w.b.users["trainer"], w.b.users["learner-01"]
            pairs = [(t, bl), (bt, learner), (bt, bl)]
        elif target == "absent":
            pairs = [(t, w.absent()), (w.absent(), learner), (w.absent(), w.absent())]
        else:
            return None
        return [Req(method, f"/v1/trainers/{x}/learners/{y}") for x, y in pairs]

    return build


USER_READ = {a: Exp(200, 200, 200) for a in USERS} | {s: denied(403) for s in SERVICES}
ADMIN_ONLY_GET = {a: denied(403) for a in ACTORS} | {"org_admin": Exp(200, 200, 200)}
DIRECTORY_ONLY = {a: denied(403) for a in ACTORS}

XAPI_VERSION = (("X-Experience-API-Version", "1.0.3"),)


def xapi(method: str, path: str, body: Any = None) -> Builder:
    """An xAPI route (Basic auth with an xAPI credential, not a JWT): the version header, and the
    target where `idless` puts it. A JWT of any actor is no credential there."""
    inner = idless(method, path, body)

    def build(w: World, actor: str, target: str) -> list[Req] | None:
        reqs = inner(w, actor, target)
        return None if reqs is None else [Req(r.method, r.path, r.body, (*r.headers, *XAPI_VERSION), r.query)
                                          for r in reqs]

    return build


def everyone(status: int) -> dict[str, Exp]:
    return {a: Exp(status, status, status, status) for a in ACTORS}


XAPI_STATEMENT = {"actor": {"mbox": "mailto:iso@example.test"}, "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
                  "object": {"id": "https://iso.example.test/course"}}
XAPI_NOT_OFFERED = [f"{m} {p}" for p in ("/xapi/activities/state", "/xapi/activities/profile", "/xapi/agents/profile")
                    for m in ("GET", "PUT", "POST", "DELETE")] + ["GET /xapi/agents", "GET /xapi/activities"]

ROUTES: dict[str, Entry] = {
    "GET /v1/me": Entry(idless("GET", "/v1/me"), USER_READ, check_me),
    "GET /v1/analytics": Entry(idless("GET", "/v1/analytics", query=(("limit", "100"),)), USER_READ, check_own_items),
    "GET /v1/analytics/summary": Entry(idless("GET", "/v1/analytics/summary"), USER_READ, check_summary),
    "PUT /v1/analytics": Entry(analytics_write, {
        "learner": Exp(200, 403, 403), "trainer": Exp(200, 403, 403, assigned=403),
        "bare_trainer": Exp(200, 403, 403), "org_admin": Exp(200, 403, 403),
        "ingest": Exp(200, 200, (404, 404, 404, 403)), "directory": denied(403),
    }),
    "GET /v1/users/{userId}/analytics": Entry(with_user_path("GET", "/v1/users/{}/analytics"), {
        "learner": denied(403), "trainer": Exp(200, 404, 404, assigned=200), "bare_trainer": Exp(200, 404, 404),
        "org_admin": Exp(200, 200, 404), "ingest": denied(403), "directory": denied(403),
    }, check_user_analytics),
    "GET /v1/comparison": Entry(idless("GET", "/v1/comparison"), USER_READ, check_comparison),
    "GET /v1/aggregates": Entry(idless("GET", "/v1/aggregates"), {
        "learner": denied(403), "trainer": Exp(200, 200, 200), "bare_trainer": Exp(200, 200, 200),
        "org_admin": Exp(200, 200, 200), "ingest": denied(403), "directory": denied(403),
    }, check_aggregates),
    "GET /v1/learners": Entry(idless("GET", "/v1/learners"), {
        "learner": denied(403), "trainer": Exp(200, 200, 200), "bare_trainer": Exp(200, 200, 200),
        "org_admin": Exp(200, 200, 200), "ingest": denied(403), "directory": denied(403),
    }, check_learners, volatile=frozenset({"asOf"})),
    "GET /v1/learners/{userId}": Entry(with_user_path("GET", "/v1/learners/{}"), {
        "learner": Exp(200, 404, 404, assigned=404),  # own: the trend on their dashboard; nobody else's
        "trainer": Exp(404, 404, 404, assigned=200), "bare_trainer": Exp(404, 404, 404),
        "org_admin": Exp(404, 200, 404),  # own: an org admin is no learner
        "ingest": denied(403), "directory": denied(403),
    }, check_learner),
    "GET /v1/cohorts": Entry(idless("GET", "/v1/cohorts"), ADMIN_ONLY_GET, check_cohorts,
                             volatile=frozenset({"asOf"})),
    "DELETE /v1/users/{userId}": Entry(erase, {
        "learner": denied(403), "trainer": denied(403), "bare_trainer": denied(403),
        "org_admin": Exp(409, 200, 404),  # own: the last org admin of A
        "ingest": denied(403), "directory": denied(403),
    }),
    "GET /v1/openapi.json": Entry(idless("GET", "/v1/openapi.json"), {a: Exp(200, 200, 200) for a in ACTORS}),
    "PUT /v1/organizations/{orgId}": Entry(organization_write, DIRECTORY_ONLY | {"directory": Exp(200, None, 403)}),
    "PUT /v1/users/{userId}": Entry(user_write, DIRECTORY_ONLY | {"directory": Exp(200, 200, 422)}),
    "GET /v1/users": Entry(idless("GET", "/v1/users", query=(("limit", "200"),)), ADMIN_ONLY_GET, check_users_page),
    "PUT /v1/users/{userId}/roles": Entry(roles_write, {a: denied(403) for a in ACTORS}
                                          | {"org_admin": Exp(200, 200, 404)}),
    "PUT /v1/trainers/{trainerId}/learners/{learnerId}": Entry(assignment("PUT"), {a: denied(403) for a in ACTORS}
                                                               | {"org_admin": Exp(200, 200, 404)}),
    "DELETE /v1/trainers/{trainerId}/learners/{learnerId}": Entry(assignment("DELETE"),
                                                                  {a: denied(403) for a in ACTORS}
                                                                  | {"org_admin": Exp(200, 200, 404)}),
    "PUT /v1/skill-targets/{skill}": Entry(idless("PUT", "/v1/skill-targets/sql", {"targetLevel": 0.8}),
                                           {a: denied(403) for a in ACTORS} | {"org_admin": Exp(200, 200, 200)},
                                           volatile=frozenset({"updatedAt", "created"})),
    "POST /v1/events": Entry(events_write, {
        "learner": Exp(200, 403, 403), "trainer": denied(403), "bare_trainer": denied(403),
        "org_admin": denied(403), "ingest": Exp(200, 200, (404, 404, 404, 403)), "directory": denied(403),
    }),
    "GET /v1/gamification": Entry(idless("GET", "/v1/gamification"), USER_READ),
    "GET /v1/leaderboard": Entry(idless("GET", "/v1/leaderboard", query=(("limit", "100"),)), USER_READ,
                                 check_leaderboard),
    "POST /v1/reports": Entry(idless("POST", "/v1/reports", {"format": "json"}),
                              {a: Exp(201, 201, 201) for a in USERS} | {s: denied(403) for s in SERVICES},
                              check_report_created,
                              volatile=frozenset({"id", "createdAt", "retainedUntil", "download", "sizeBytes",
                                                  "checksumSha256"})),
    "GET /v1/reports": Entry(idless("GET", "/v1/reports", query=(("limit", "100"),)), USER_READ, check_report_list),
    "GET /v1/reports/{reportId}": Entry(report_read, {
        "learner": Exp(200, 404, 404), "trainer": Exp(200, 404, 404, assigned=404),
        "bare_trainer": Exp(200, 404, 404), "org_admin": Exp(200, 200, 404),
        "ingest": Exp(403, None, 403), "directory": Exp(403, None, 403),
    }, check_report_read),
}


ROUTES.update({
    "GET /xapi/about": Entry(xapi("GET", "/xapi/about"), everyone(200)),
    "GET /xapi/statements": Entry(xapi("GET", "/xapi/statements"), everyone(401)),
    "POST /xapi/statements": Entry(xapi("POST", "/xapi/statements", [XAPI_STATEMENT]), everyone(401)),
    "PUT /xapi/statements": Entry(xapi("PUT", "/xapi/statements", XAPI_STATEMENT), everyone(401)),
    **{key: Entry(xapi(*key.split(" ", 1)), everyone(501)) for key in XAPI_NOT_OFFERED},
})


def test_every_route_of_the_template_has_an_entry() -> None:
    routed = {r.route_key for r in template.routes()}
    assert set(ROUTES) == routed, (f"routes without an entry: {sorted(routed - set(ROUTES))}; "
                                   f"entries without a route: {sorted(set(ROUTES) - routed)}")
    for key, entry in ROUTES.items():
        assert set(entry.expect) == set(ACTORS), key


# --- the suite --------------------------------------------------------------------------------


def _strip(value: Any, volatile: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, volatile) for k, v in value.items() if k not in volatile and k != "requestId"}
    if isinstance(value, list):
        return [_strip(v, volatile) for v in value]
    return value


def assert_no_b_data(w: World, req: Req, answer: Answer) -> None:
    text = answer.text.lower()
    leaked = [m for m in w.markers if m in text]
    assert not leaked, f"{req.describe()} -> {answer.status} shows organization B's {leaked}: {answer.text[:500]}"


def assert_b_untouched(w: World, what: str) -> None:
    now = org_digest(w, w.b.id)
    changed = sorted(k for k in now if now[k] != w.b_digest[k])
    assert not changed, f"{what} changed organization B: {changed}"


def assert_absent_ids_still_absent(w: World, ids: list[UUID], what: str) -> None:
    if not ids:
        return
    found = w.sql(
        "SELECT 'organizations', id FROM organizations WHERE id = ANY (%(ids)s) "
        "UNION ALL SELECT 'users', id FROM users WHERE id = ANY (%(ids)s) "
        "UNION ALL SELECT 'user_tombstones', user_id FROM user_tombstones WHERE user_id = ANY (%(ids)s) "
        "UNION ALL SELECT 'reports', id FROM reports WHERE id = ANY (%(ids)s) "
        "UNION ALL SELECT 'trainer_assignments', learner_id FROM trainer_assignments "
        "WHERE learner_id = ANY (%(ids)s) OR trainer_id = ANY (%(ids)s) "
        "UNION ALL SELECT 'analytics', user_id FROM analytics WHERE user_id = ANY (%(ids)s) "
        "UNION ALL SELECT 'gamification', user_id FROM gamification WHERE user_id = ANY (%(ids)s) "
        "UNION ALL SELECT 'learning_events', user_id FROM learning_events WHERE user_id = ANY (%(ids)s)",
        {"ids": ids},
    )
    assert not found, f"{what} created rows for ids that did not exist: {found}"


CASES = [pytest.param(route, actor, id=f"{route}-{actor}") for route in ROUTES for actor in ACTORS]


@pytest.mark.parametrize(("route", "actor"), CASES)
def test_route_keeps_organizations_apart(world: World, route: str, actor: str) -> None:
    entry = ROUTES[route]
    exp = entry.expect[actor]
    answers: dict[str, list[tuple[Req, Answer]]] = {}
    ran = []
    for target in TARGETS:
        before = len(world.absent_ids)
        reqs = entry.build(world, actor, target)
        expected = exp.status(target)
        if reqs is None or expected is None:
            assert reqs is None or target in ("assigned", "peer"), f"{route} {actor} {target}: no expectation"
            continue
        ran.append(target)
        statuses = expected if isinstance(expected, tuple) else (expected,) * len(reqs)
        assert len(statuses) == len(reqs), f"{route} {actor} {target}: {len(reqs)} requests"
        got = []
        for req, status in zip(reqs, statuses, strict=True):
            answer = world.send(actor, req)
            got.append((req, answer))
            assert answer.status == status, (
                f"{actor} {target}: {req.describe()} -> {answer.status} (expected {status}): {answer.text[:500]}"
                + (f"\n--- gateway log (tail) ---\n{world.gateway.log_tail()}" if answer.status >= 500 else ""))
            assert_no_b_data(world, req, answer)
            if entry.check and 200 <= answer.status < 300:
                entry.check(world, actor, req, answer)
        answers[target] = got
        if reqs[0].method != "GET":
            assert_b_untouched(world, f"{actor} {target} {route}")
            assert_absent_ids_still_absent(world, world.absent_ids[before:], f"{actor} {target} {route}")
    assert {"own", "foreign", "absent"} <= set(ran), ran
    foreign, absent = answers["foreign"], answers["absent"]
    for (fr, fa), (ar, aa) in zip(foreign, absent, strict=True):
        assert fa.status == aa.status, f"{fr.describe()} -> {fa.status} but {ar.describe()} -> {aa.status}"
        assert _strip(fa.json, entry.volatile) == _strip(aa.json, entry.volatile), (
            f"hidden and absent answer differently:\n  {fr.describe()} -> {fa.text[:400]}\n"
            f"  {ar.describe()} -> {aa.text[:400]}")


# --- beyond the table ----------------------------------------------------------------------------


def _pages(w: World, actor: str, path: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = (("limit", str(limit)),) + ((("cursor", cursor),) if cursor else ())
        answer = w.send(actor, Req("GET", path, query=query))
        assert answer.status == 200, answer.text
        assert_no_b_data(w, Req("GET", path, query=query), answer)
        items += answer.json["items"]
        cursor = answer.json.get("nextCursor")
        if not cursor:
            return items


def test_lists_and_counts_hold_only_org_a(world: World) -> None:
    w = world
    # Every list, paged through, has exactly A's rows, while B has rows of each kind too.
    reports = _pages(w, "org_admin", "/v1/reports", 3)
    expected = w.sql("SELECT id::text FROM reports WHERE organization_id = %s", (w.a.id,))
    assert sorted(r["id"] for r in reports) == sorted(r[0] for r in expected)
    assert w.sql("SELECT count(*) FROM reports WHERE organization_id = %s", (w.b.id,))[0][0] >= 2
    own = _pages(w, "learner", "/v1/reports", 1)
    assert {r["userId"] for r in own} == {str(w.actor_id("learner"))}
    assert len(own) == w.sql("SELECT count(*) FROM reports WHERE user_id = %s", (w.actor_id("learner"),))[0][0]

    users = _pages(w, "org_admin", "/v1/users", 4)
    expected = w.sql("SELECT id::text FROM users WHERE organization_id = %s", (w.a.id,))
    assert sorted(u["id"] for u in users) == sorted(r[0] for r in expected)

    board = w.send("learner", Req("GET", "/v1/leaderboard", query=(("limit", "100"),))).json
    a_count, b_count = _org_learners_with_points(w, w.a.id), _org_learners_with_points(w, w.b.id)
    assert b_count >= B_LEARNERS and a_count >= A_LEARNERS
    assert board["participants"] == a_count == len(board["items"])
    assert board["you"] is not None and board["you"]["isYou"]

    history = w.send("trainer", Req("GET", "/v1/aggregates")).json["items"]
    assert [i["learners"] for i in history] == [ASSIGNED] * 3  # B's trainer's cohort has 3
    organization = w.send("org_admin", Req("GET", "/v1/aggregates")).json["items"]
    assert len(organization) == 3 and all(i["learners"] >= A_LEARNERS for i in organization)  # B has 11
    learners = w.send("org_admin", Req("GET", "/v1/learners")).json["items"]
    assert len(learners) >= A_LEARNERS and all(i["email"].endswith("@example.test") for i in learners)

    comparison = w.send("learner", Req("GET", "/v1/comparison")).json["items"]
    shown = {i["analyticsType"]: i["peers"]["userCount"] for i in comparison if i["available"]}
    b_groups = dict(w.sql("SELECT analytics_type, user_count FROM comparison_aggregates WHERE organization_id = %s "
                          "AND role = 'learner'", (w.b.id,)))
    assert shown and set(shown) <= set(b_groups), (shown, b_groups)  # both organizations have these groups
    assert all(count == A_LEARNERS for count in shown.values()), shown  # A's 12, not 23

    # A trainer's view of users: only assigned learners; the bare trainer's: none.
    for actor, visible in (("trainer", ASSIGNED), ("bare_trainer", 0)):
        seen = [k for k, v in w.a.users.items() if k.startswith("learner-")
                and w.send(actor, Req("GET", f"/v1/users/{v}/analytics")).status == 200]
        assert len(seen) == visible, (actor, seen)


def _event(event_id: UUID, occurred_at: str, user: UUID | None = None) -> dict[str, Any]:
    event = {"eventId": str(event_id), "verb": "progressed", "objectId": "course-iso", "objectType": "course",
             "occurredAt": occurred_at}
    return event | ({"userId": str(user)} if user else {})


def test_an_event_id_of_org_b_is_no_duplicate_in_org_a(world: World) -> None:
    """Idempotency by event id must not reach across users: an event that happens to carry the id
    (and time) of an event of B, or of another learner of A, is stored like any new event, not
    counted as a duplicate; otherwise the counts tell the caller that the hidden event exists (and
    the caller's event is lost). Replays of the caller's own events are still duplicates."""
    w = world
    b_id, b_at = w.b_events[0]
    peer_id, peer_at = w.a_events["learner-02"]
    own_id, own_at = w.a_events["learner-01"]
    cases = [("learner", None, b_id, b_at), ("learner", None, peer_id, peer_at),
             ("ingest", w.a.users["learner-03"], b_id, b_at), ("ingest", w.a.users["learner-03"], peer_id, peer_at)]
    for actor, user, taken_id, taken_at in cases:
        hidden = w.send(actor, Req("POST", "/v1/events", {"events": [_event(taken_id, taken_at, user)]}))
        fresh = w.send(actor, Req("POST", "/v1/events", {"events": [_event(uuid.uuid4(), taken_at, user)]}))
        counts = [{k: a.json[k] for k in ("received", "inserted", "duplicates")} for a in (hidden, fresh)]
        assert hidden.status == fresh.status == 200, (hidden.text, fresh.text)
        assert counts[0] == counts[1] == {"received": 1, "inserted": 1, "duplicates": 0}, (actor, counts)
        assert_no_b_data(w, Req("POST", "/v1/events"), hidden)
    replay = w.send("learner", Req("POST", "/v1/events", {"events": [_event(own_id, own_at)]}))
    assert {k: replay.json[k] for k in ("inserted", "duplicates")} == {"inserted": 0, "duplicates": 1}
    assert_b_untouched(w, "events with B's event id")
    assert w.sql("SELECT count(*) FROM learning_events WHERE event_id = %s", (b_id,))[0][0] == 3  # B's, A's two


def test_directory_service_and_the_ids_and_emails_of_org_b(world: World) -> None:
    """PUT /v1/users/{userId} creates or updates. An email of B is no obstacle in A (emails are
    unique per organization): it is created like any other. A user id of B is: user ids are the
    platform's, one namespace for every organization, so A's directory service cannot create a
    user under an id B holds (409 NOT_APPLIED), while a random id is created. The one answer that
    must differ from the absent case; it changes nothing and shows nothing of B."""
    w = world
    b_user = w.b.users["learner-01"]
    b_email = w.sql("SELECT email FROM users WHERE id = %s", (b_user,))[0][0]
    body = {"organizationId": str(w.a.id), "name": "Newcomer", "roles": ["learner"], "version": 1}
    with_b_email, with_fresh_email = uuid.uuid4(), uuid.uuid4()
    answers = [
        w.send("directory", Req("PUT", f"/v1/users/{with_b_email}", body | {"email": b_email.upper()})),
        w.send("directory", Req("PUT", f"/v1/users/{with_fresh_email}",
                                body | {"email": f"{uuid.uuid4().hex}@x.test"})),
    ]
    for answer in answers:
        assert (answer.status, answer.json.get("outcome")) == (200, "created"), answer.text
        assert_no_b_data(w, Req("PUT", "/v1/users/..."), answer)
    assert w.sql("SELECT organization_id FROM users WHERE id = %s", (with_b_email,)) == [(w.a.id,)]

    taken = w.send("directory", Req("PUT", f"/v1/users/{b_user}", body | {"email": f"{uuid.uuid4().hex}@x.test",
                                                                            "version": 10**12}))
    assert (taken.status, taken.code) == (409, "NOT_APPLIED"), taken.text
    assert_no_b_data(w, Req("PUT", f"/v1/users/{b_user}"), taken)
    assert_b_untouched(w, "the directory service of A naming B's user and email")
