"""EventBridge: the platform's directory events on its bus (organization.upserted, user.upserted,
user.deleted), applied with the same rules as the HTTP routes, as the registered platform client
DIRECTORY_CLIENT_ID (directory scope, every organization). user.deleted is the erasure of
DELETE /v1/users/{userId}: every row and every report file.

One event per invocation. A failure (invalid detail, a refused change, the database or S3 down)
raises: Lambda retries the asynchronous invocation, then hands the event to the on-failure queue.
"""

import os

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from ms8.bus import BusWork, bus_handler
from ms8.schemas.directory import Applied
from ms8.services.directory import apply_one, parse_event

CLIENT_ID = os.environ.get("DIRECTORY_CLIENT_ID", "platform-bus")


def _answer(applied: Applied) -> tuple[dict[str, object], dict[str, int], str]:
    changed = applied.outcome in ("created", "updated", "deleted")
    metric = "DirectoryEventsApplied" if changed else "DirectoryEventsIgnored"
    return applied.model_dump(mode="json"), {metric: 1}, f"directory event: {applied.outcome}"


@bus_handler(client_id=CLIENT_ID, scope="directory", failure_metric="DirectoryEventFailures",
             failure_message="directory event not applied")
def lambda_handler(event: EventBridgeEvent) -> BusWork[Applied]:
    change = parse_event(event.detail_type, event.detail)
    return BusWork(lambda conn, _caller: apply_one(conn, change), _answer)
