"""EventBridge: the platform's directory events on its bus (organization.upserted, user.upserted,
user.deleted), applied with the same rules as the HTTP routes, as the registered platform client
DIRECTORY_CLIENT_ID (directory scope, every organization). user.deleted is the erasure of
DELETE /v1/users/{userId}: every row and every report file.

One event per invocation. A failure (invalid detail, a refused change, the database or S3 down)
raises: Lambda retries the asynchronous invocation, then hands the event to the on-failure queue.
"""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from ms8 import db
from ms8.services.directory import apply_one, parse_event

CLIENT_ID = os.environ.get("DIRECTORY_CLIENT_ID", "platform-bus")

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(event_id=event.get_id, detail_type=event.detail_type)
    try:
        change = parse_event(event.detail_type, event.detail)
        with db.runtime.transaction(db.as_service(CLIENT_ID, "directory")) as (conn, _):
            applied = apply_one(conn, change)
    except Exception:
        logger.exception("directory event not applied")
        metrics.add_metric(name="DirectoryEventFailures", unit=MetricUnit.Count, value=1)
        raise
    changed = applied.outcome in ("created", "updated", "deleted")
    metrics.add_metric(name="DirectoryEventsApplied" if changed else "DirectoryEventsIgnored",
                       unit=MetricUnit.Count, value=1)
    result = applied.model_dump(mode="json")
    logger.info(f"{event.detail_type}: {applied.outcome}", extra={"result": result})
    return result
