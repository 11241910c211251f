"""Test data written as the owner inside maintenance transactions (RLS is forced on the owner)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb


@dataclass
class Org:
    id: UUID
    users: dict[str, UUID] = field(default_factory=dict)


class Factory:
    """Creates organizations, users, assignments and rows; every call is one maintenance tx."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def sql(self, statement: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.conn.transaction():
            self.conn.execute("SELECT app.begin_maintenance()")
            cur = self.conn.execute(statement, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def rebuild_days(self, org_id: UUID) -> int:
        """The organization's learner days built again from its learning events (after a test
        wrote events directly, bypassing ingest, which keeps the days itself)."""
        from ms8.repositories import days

        with self.conn.transaction():
            self.conn.execute("SELECT app.begin_maintenance()")
            return days.rebuild(self.conn, org_id)

    def org(self, name: str = "Org", **users: Iterable[str]) -> Org:
        """An organization with users named by keyword: `factory.org(alice=["learner"])`."""
        org = Org(uuid.uuid4())
        self.sql("INSERT INTO organizations (id, name) VALUES (%s, %s)", (org.id, name))
        for key, roles in users.items():
            org.users[key] = self.user(org.id, list(roles), name=key)
        return org

    def user(self, org_id: UUID, roles: list[str], name: str = "user", timezone: str = "UTC") -> UUID:
        uid = uuid.uuid4()
        self.sql(
            "INSERT INTO users (id, organization_id, email, name, roles, timezone) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (uid, org_id, f"{name}-{uid.hex[:12]}@example.test", name, roles, timezone),
        )
        return uid

    def assign(self, org_id: UUID, trainer_id: UUID, learner_id: UUID) -> None:
        self.sql(
            "INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id) VALUES (%s, %s, %s)",
            (org_id, trainer_id, learner_id),
        )

    def analytics(
        self, org_id: UUID, user_id: UUID, role: str, analytics_type: str, data: dict[str, Any],
        updated_at: str | None = None,
    ) -> UUID:
        row = self.sql(
            "INSERT INTO analytics (user_id, organization_id, role, analytics_type, data) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (user_id, org_id, role, analytics_type, Jsonb(data)),
        )
        if updated_at is not None:
            # updated_at is kept by a trigger on UPDATE; tests that need an old row disable it.
            self.sql("ALTER TABLE analytics DISABLE TRIGGER analytics_updated_at")
            try:
                self.sql("UPDATE analytics SET updated_at = %s WHERE id = %s", (updated_at, row[0][0]))
            finally:
                self.sql("ALTER TABLE analytics ENABLE TRIGGER analytics_updated_at")
        return row[0][0]  # type: ignore[no-any-return]

    def service_client(self, client_id: str, scopes: list[str], org_id: UUID | None) -> str:
        self.sql(
            "INSERT INTO service_clients (client_id, organization_id, scopes) VALUES (%s, %s, %s) "
            "ON CONFLICT (client_id) DO UPDATE SET organization_id = EXCLUDED.organization_id, "
            "scopes = EXCLUDED.scopes",
            (client_id, org_id, scopes),
        )
        return client_id

    def refresh_comparison(self, randbelow: Any = None, *, a_day_later: bool = True) -> Any:
        """The refresh job's work: the view, then the (noisy) releases; returns the release run.
        `randbelow` (e.g. a seeded random.Random().randrange) makes the noise reproducible.
        `a_day_later` forgets the groups' spent budget first, as if the next day's refresh ran
        (a group gets one fresh release a day, ms8.domain.privacy)."""
        from ms8.services.comparison import release_groups

        with self.conn.transaction():
            self.conn.execute("SELECT app.begin_maintenance()")
            if a_day_later:
                self.conn.execute("DELETE FROM app.comparison_spend")
            self.conn.execute("REFRESH MATERIALIZED VIEW comparison_aggregates")
            now = self.conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            return release_groups(self.conn, now, *([randbelow] if randbelow else []))
