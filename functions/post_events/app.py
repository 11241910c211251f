"""POST /v1/events: a batch of 1..1000 learning events, atomic and idempotent by event id.
A learner sends their own; a platform service with the ingest scope sends any of its
organization's users'. The events and the learners' days are stored in one transaction (a
platform's batch in one statement, its own transaction); a learner's own events also update
their analytics and points in it, a platform's batch leaves those to the refresh job
(RefreshPendingFunction, every minute)."""

import gc
from datetime import UTC, datetime

from ms8.http import handler, make_app, principal_tx, service_principal
from ms8.schemas.events import EventBatch, IngestResult
from ms8.services.ingest import ingest, ingest_as_service

# A 1,000-event batch is ~10,000 container objects (the validated models and their fields), alive
# until the answer: at the default threshold of 700 allocations the collector ran ~15 young and
# ~1.4 middle-generation collections per batch, each walking what the batch had built so far
# (~3.5 ms of ~45 ms of CPU, more at 500 learners; docs/PERFORMANCE.md). It stays on, for this
# function's process, with young collections ~30 times rarer: reference counting frees a batch as
# before, and the few cycles a request may leave wait a little longer for the collector.
gc.set_threshold(20_000, *gc.get_threshold()[1:])

# The body is validated once, straight from its JSON text (up to 1,000 events).
app = make_app(body=EventBatch)


@app.post("/v1/events", summary="Ingest learning events (batch, atomic, idempotent)", tags=["events"])
def post_events(batch: EventBatch) -> IngestResult:
    service = service_principal(app, "ingest")
    if service is not None:  # a platform's batch: one statement (context, events, days, commit)
        return ingest_as_service(service[0], "ingest", service[1], batch, datetime.now(UTC))
    with principal_tx(app, "ingest", roles=("learner",)) as (conn, caller):
        return ingest(conn, caller, batch, datetime.now(UTC))


lambda_handler = handler(app, max_body_bytes=2 * 1024 * 1024)
