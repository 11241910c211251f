"""Learning events from the platform's EventBridge bus (rule on PlatformEventBusName and the
detail-type LearningEventsDetailType).

The event's `detail` is one batch for one organization, the same events as POST /v1/events
(each with its `userId`):

    {"organizationId": "<uuid>", "events": [{"eventId": "<uuid>", "userId": "<uuid>",
      "verb": "completed", "objectId": "course-42", "objectType": "course", "skills": ["sql"],
      "result": {"score": 0.9, "success": true, "durationSeconds": 1200},
      "occurredAt": "2026-11-26T09:30:00Z"}, ...]}

It is stored as the registered platform client BUS_CLIENT_ID (default `platform-bus`, ingest
scope). Anything wrong (an invalid detail, a user not of that organization, the database) is
logged and raised: nothing is written, and the invocation fails so Lambda retries it and then
hands it to the dead-letter queue. A retried event is harmless: ingest is idempotent.
"""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from ms8.services.ingest import ingest_from_bus

logger = Logger()
metrics = Metrics()
CLIENT_ID = os.environ.get("BUS_CLIENT_ID", "platform-bus")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(eventId=event.get_id, detailType=event.detail_type, source=event.source)
    try:
        result = ingest_from_bus(event.get("detail"), CLIENT_ID, datetime.now(UTC))
    except Exception as exc:
        logger.exception("learning events not ingested", extra={"reason": str(exc)})
        metrics.add_metric(name="IngestFailures", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="EventsIngested", unit=MetricUnit.Count, value=result.inserted)
    metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=result.duplicates)
    logger.info("learning events ingested", extra={"result": result.model_dump(mode="json")})
    return result.model_dump(mode="json")
