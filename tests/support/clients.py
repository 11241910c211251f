"""Platform clients that a one-statement write (a function that sets the context itself) must
refuse as any request's context call does, with the SQLSTATE it raises."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from tests.support.factories import Factory

# (scopes granted or None for an unregistered client, bound to the organization, another
# organization named, the SQLSTATE expected)
refused_clients = pytest.mark.parametrize(("scopes", "bound", "named", "sqlstate"), [
    (None, True, False, "MS402"),           # not registered
    (["directory"], True, False, "MS404"),  # the ingest scope not granted
    (["ingest"], True, True, "MS404"),      # an organization it is not bound to
    (["ingest"], False, False, "MS405"),    # platform-wide, no organization named
])


def refused_client(factory: Factory, organization_id: UUID, scopes: list[str] | None, bound: bool,
                   named: bool) -> tuple[str, UUID | None]:
    """The client id to send and the organization it names, registered as the case says."""
    client = f"svc-{uuid.uuid4().hex[:8]}"
    if scopes is not None:
        factory.service_client(client, scopes, organization_id if bound else None)
    return client, uuid.uuid4() if named else None
