"""Stable identities of the demo data: the same ids on every machine, so sample events, printed
tokens and the README's curl all name real demo users."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("5b7e3c1a-8d4f-4e2b-9a6c-0f1d2e3c4b5a")

ACME = "acme"  # the big organization: 36 learners, 3 trainers, 1 org admin
GLOBEX = "globex"  # the small one: peer comparison stays hidden there (fewer than 10)


def org_id(slug: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"org/{slug}")


def user_id(org_slug: str, handle: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"user/{org_slug}/{handle}")


LEARNER = user_id(ACME, "learner-01")
TRAINER = user_id(ACME, "trainer-01")
ORG_ADMIN = user_id(ACME, "admin")
OTHER_ORG_LEARNER = user_id(GLOBEX, "learner-01")
INGEST_CLIENT = "demo-ingest-acme"
DIRECTORY_CLIENT = "demo-directory"
# The local demo's xAPI credential of ACME (make run registers it; never used outside this machine).
XAPI_KEY = "xkdemo-acme"
XAPI_SECRET = "demo-xapi-secret-acme"
XAPI_HOME_PAGE = "https://lms.acme.example"
