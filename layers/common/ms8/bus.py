"""The entry point of functions fed by the platform's EventBridge bus: it owns the transaction.

A bus function describes its work for one event (`BusWork`: which organization it acts in and what
to do on the open connection); `bus_handler` does the rest, the same way for every such function:
the logging context and the event's keys, one transaction on the runtime connection as the
registered platform client (`db.as_service`: the scope and organization RLS grants it), the
metrics, and the failure path. A failure is logged, counted and raised: nothing is committed, and
Lambda retries the asynchronous invocation, then hands the event to the on-failure destination.

Services below it take the connection and the caller and never begin, commit or roll back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

import psycopg
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from ms8 import db

T = TypeVar("T")

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "ms8-learning-analytics"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MS8LearningAnalytics"))


@dataclass(frozen=True)
class BusWork(Generic[T]):
    """One event's work: `apply` runs inside the transaction; `result` turns what it returned into
    the handler's JSON answer, with the metrics worth emitting (name -> count) and a log line."""

    apply: Callable[[psycopg.Connection, db.ServiceCaller], T]
    result: Callable[[T], tuple[dict[str, Any], Mapping[str, int], str]]
    organization_id: UUID | None = None
    log_keys: dict[str, Any] = field(default_factory=dict)


def bus_handler(
    *, client_id: str, scope: str, failure_metric: str, failure_message: str
) -> Callable[[Callable[[EventBridgeEvent], BusWork[Any]]], Callable[[dict[str, Any], LambdaContext], Any]]:
    """Make a Lambda handler of `describe(event) -> BusWork`, run as `client_id` with `scope`."""

    def decorate(
        describe: Callable[[EventBridgeEvent], BusWork[Any]],
    ) -> Callable[[dict[str, Any], LambdaContext], Any]:
        @logger.inject_lambda_context(clear_state=True)
        @metrics.log_metrics(raise_on_empty_metrics=False)
        def lambda_handler(raw: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            event = EventBridgeEvent(raw)
            logger.append_keys(event_id=event.get_id, detail_type=event.detail_type, source=event.source)
            try:
                work = describe(event)
                logger.append_keys(**work.log_keys)
                with db.runtime.transaction(db.as_service(client_id, scope, work.organization_id)) as (conn, caller):
                    done = work.apply(conn, caller)
                answer, counts, message = work.result(done)
            except Exception as exc:
                logger.exception(failure_message, extra={"reason": str(exc)})
                metrics.add_metric(name=failure_metric, unit=MetricUnit.Count, value=1)
                raise
            for name, value in counts.items():
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            logger.info(message, extra={"result": answer})
            return answer

        handler: Callable[[dict[str, Any], LambdaContext], Any] = lambda_handler
        return handler

    return decorate
