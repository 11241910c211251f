"""A report rendered through the gateway downloads from the local S3 by its link, and still does
after the S3 server restarts (as it does with `make run`): the objects are kept on disk and the
link is signed afresh on each read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from local import s3, stack, tokens
from tests.support.factories import Factory
from tests.support.gateway import gateway_process

BUCKET = "ms8-reports-restart-test"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "s3"


@pytest.fixture
def store(data_dir: Path) -> Iterator[s3.S3]:
    server = s3.S3(port=0, data_dir=data_dir)
    server.start(BUCKET)
    yield server
    server.stop()


def test_a_ready_report_downloads_before_and_after_a_restart(factory: Factory, database: str, store: s3.S3,
                                                             data_dir: Path) -> None:
    org = factory.org("Restart Org", learner=["learner"])
    factory.analytics(org.id, org.users["learner"], "learner", "mastery", {"mastery": 0.7})
    env = {**stack.function_env(store.endpoint, db=database), "REPORTS_BUCKET": BUCKET}
    auth = {"Authorization": f"Bearer {tokens.user_token(org.users['learner'])}"}
    with gateway_process(env, workers=1) as running, httpx.Client(base_url=running.url, timeout=30) as api:
        created = api.post("/v1/reports", json={"format": "csv"}, headers=auth)
        assert created.status_code == 201, created.text
        report = created.json()
        first = httpx.get(report["download"]["url"])
        assert first.status_code == 200
        assert hashlib.sha256(first.content).hexdigest() == report["checksumSha256"]

        port = int(urlsplit(store.endpoint).port or 0)
        store.stop()  # as Ctrl-C on `make run`: the objects are saved, the server's memory is gone
        again = s3.S3(port=port, data_dir=data_dir)
        assert again.start(BUCKET) == store.endpoint
        try:
            read = api.get(f"/v1/reports/{report['id']}", headers=auth)
            assert read.status_code == 200 and read.json()["status"] == "ready"
            link = read.json()["download"]["url"]  # signed afresh, by the new server's key and clock
            after = httpx.get(link)
            assert after.status_code == 200, after.text
            assert after.content == first.content
            tampered = link.replace("X-Amz-Signature=", "X-Amz-Signature=0")
            assert httpx.get(tampered).status_code == 403
        finally:
            again.stop()
