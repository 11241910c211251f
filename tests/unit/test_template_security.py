"""template.yaml keeps a trace and an alarm where it matters: access logs of the HTTP API and of
report downloads, a dead-letter queue and an alarm for every scheduled job, reserved concurrency
for the API functions, and a reason beside every checkov finding left open."""

from __future__ import annotations

from typing import Any

import pytest

from local import template

TEMPLATE = template.document()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def _scheduled() -> list[str]:
    return [name for name, res in RESOURCES.items() if res["Type"] == "AWS::Serverless::Function"
            and any(e.get("Type") == "ScheduleV2" for e in (res["Properties"].get("Events") or {}).values())]


def test_the_http_api_writes_an_access_log_to_an_encrypted_group_with_retention() -> None:
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    group = settings["DestinationArn"]["GetAtt"].split(".")[0]
    props = RESOURCES[group]["Properties"]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup" and props["RetentionInDays"] and props["KmsKeyId"]
    for field in ("$context.requestId", "$context.routeKey", "$context.status", "$context.authorizer.claims.sub"):
        assert field in settings["Format"]
    assert "Authorization" not in settings["Format"] and "header" not in settings["Format"]


def test_report_downloads_are_in_the_buckets_access_log() -> None:
    logging = RESOURCES["ReportsBucket"]["Properties"]["LoggingConfiguration"]
    target = logging["DestinationBucketName"]["Ref"]
    assert RESOURCES[target]["Type"] == "AWS::S3::Bucket"
    rules = RESOURCES[target]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any("ExpirationInDays" in r for r in rules)
    policies = [r for r in RESOURCES.values() if r["Type"] == "AWS::S3::BucketPolicy"
                and r["Properties"]["Bucket"] == {"Ref": target}]
    [policy] = policies
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Principal"] == {"Service": "logging.s3.amazonaws.com"} for s in statements)


@pytest.mark.parametrize("job", _scheduled())
def test_every_scheduled_job_has_a_failure_destination_and_an_alarm(job: str) -> None:
    props = RESOURCES[job]["Properties"]
    queue = props["DeadLetterQueue"]["TargetArn"]["GetAtt"].split(".")[0]
    assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue"
    for event in props["Events"].values():
        assert event["Properties"]["DeadLetterConfig"] == {"Arn": {"GetAtt": f"{queue}.Arn"}}
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"
              and {"Name": "FunctionName", "Value": {"Ref": job}} in (r["Properties"].get("Dimensions") or [])]
    # The every-minute refresh retries by itself at the next run: 3 failures in 15 minutes alarm.
    threshold = 3 if job == "RefreshPendingFunction" else 1
    assert [(a["MetricName"], a["Threshold"]) for a in alarms] == [("Errors", threshold)]
    assert alarms[0]["AlarmActions"] == [{"Ref": "OpsAlarmTopic"}]
    assert props["ReservedConcurrentExecutions"] == 1


def test_the_failure_queue_and_the_comparison_problems_raise_an_alarm() -> None:
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    queue = [a for a in alarms if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    assert queue and queue[0]["Dimensions"][0]["Value"] == {"GetAtt": "JobFailureQueue.QueueName"}
    names = {m["MetricStat"]["Metric"]["MetricName"] for a in alarms for m in a.get("Metrics", []) if "MetricStat" in m}
    assert {"FailedGroups", "OutOfRangeValues"} <= names


def test_api_functions_reserve_concurrency_through_the_globals() -> None:
    reserved = TEMPLATE["Globals"]["Function"]["ReservedConcurrentExecutions"]
    assert reserved["If"][:2] == ["ReserveApiConcurrency", {"Ref": "ApiReservedConcurrency"}]
    api_functions = {r.function.logical_id for r in template.routes()}
    assert api_functions
    assert all("ReservedConcurrentExecutions" not in RESOURCES[f]["Properties"] for f in api_functions)


def test_every_checkov_skip_says_why() -> None:
    skips = [(name, s) for name, r in RESOURCES.items()
             for s in ((r.get("Metadata") or {}).get("checkov") or {}).get("skip", [])]
    assert skips
    for name, skip in skips:
        assert skip["id"].startswith("CKV") and len(skip.get("comment", "")) > 30, (name, skip)
