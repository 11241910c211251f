"""POST /v1/events: a batch of 1..1000 learning events, atomic and idempotent by event id.
A learner sends their own; a platform service with the ingest scope sends any of its
organization's users'. The events and the learners' days are stored in one transaction (a
platform's batch in one statement, its own transaction); a learner's own events also update
their analytics and points in it, a platform's batch leaves those to the refresh job
(RefreshPendingFunction, every minute)."""

from datetime import UTC, datetime

from ms8.collector import for_bulk_batches
from ms8.http import handler, make_app, service_principal, user_tx
from ms8.schemas.events import EventBatch, IngestResult
from ms8.services.ingest import ingest, ingest_as_service

for_bulk_batches()  # ~10,000 objects per batch, alive to the answer (ms8.collector)

# The body is validated once, straight from its JSON text (up to 1,000 events).
app = make_app(body=EventBatch)


@app.post("/v1/events", summary="Ingest learning events (batch, atomic, idempotent)", tags=["events"])
def post_events(batch: EventBatch) -> IngestResult:
    service = service_principal(app, "ingest")
    if service is not None:  # a platform's batch: one statement (context, events, days, commit)
        return ingest_as_service(service[0], "ingest", service[1], batch, datetime.now(UTC))
    with user_tx(app, ("learner",)) as (conn, caller):
        return ingest(conn, caller, batch, datetime.now(UTC))


lambda_handler = handler(app, max_body_bytes=2 * 1024 * 1024)
