"""A Lambda killed mid-batch (timeout) leaves nothing half-written and no lock behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.api import call
from tests.support.factories import Factory

# The child process is a Lambda container: it handles PUT /v1/analytics, and is killed after the
# batch statement ran but before the commit, as a timeout kills the sandbox.
CHILD = """
import json, sys, time
from pathlib import Path
from ms8.repositories import analytics
from ms8.services import snapshots
from local import apigw, runtime, template

marker = Path({marker!r})
original = analytics.upsert_batch_summary
def slow_upsert(conn, rows):
    inserted, updated = original(conn, rows)
    marker.write_text(str(inserted + updated))
    time.sleep(60)
    return inserted, updated
snapshots.upsert_batch_summary = slow_upsert

route = next(r for r in template.routes() if r.route_key == "PUT /v1/analytics")
event = apigw.http_event("PUT", "/v1/analytics", claims=apigw.user_claims({user!r}), route=route,
                         headers={{"content-type": "application/json"}}, body=json.dumps({body!r}))
runtime.invoke(route.function, event)
"""


def test_killed_mid_batch_writes_nothing(factory: Factory, tmp_path: Path) -> None:
    org = factory.org(alice=["learner"])
    user = str(org.users["alice"])
    body = {"items": [{"analyticsType": t, "data": {"v": 1}}
                      for t in ("learning_velocity", "engagement", "mastery", "skill_gap")]}
    marker = tmp_path / "upserted"
    code = CHILD.format(marker=str(marker),
                        user=user, body=body)
    child = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        # write_text creates the file before it writes: wait for the content, not the name.
        while not (marker.exists() and marker.read_text()):
            assert child.poll() is None, child.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the child never reached the upsert"
            time.sleep(0.05)
        assert marker.read_text() == "4"  # the rows were written inside the open transaction
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    assert factory.sql("SELECT count(*) FROM analytics WHERE user_id = %s", (user,)) == [(0,)]
    # The dead transaction holds no lock: the same keys upsert at once.
    start = time.monotonic()
    r = call("PUT", "/v1/analytics", sub=user, body=body)
    assert r.status == 200, json.dumps(r.body)
    assert time.monotonic() - start < 5
    assert factory.sql("SELECT count(*) FROM analytics WHERE user_id = %s", (user,)) == [(4,)]
