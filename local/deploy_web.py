"""Publish the built web app (web/dist) to the stack's private web bucket, behind CloudFront.

    make web && .venv/bin/python -m local.deploy_web --stack ms8-dev [--region eu-west-1]

It reads the stack's outputs (ApiUrl, WebBucketName, WebDistributionId, WebIssuer, WebClientId,
WebSignInDomain), writes `config.json` beside index.html (where the API is and how users sign
in: the issuer, the app client, the sign-in endpoints), uploads every file under `app/` with its
content type and caching (assets named by content hash: cached for a year; index.html and
config.json: revalidated every time), removes files of earlier builds, and asks CloudFront to
drop its copies of index.html and config.json.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
import time
from pathlib import Path
from typing import Any

from local.paths import WEB_DIST

PREFIX = "app/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def app_config(outputs: dict[str, str]) -> dict[str, Any]:
    """config.json from the stack's outputs; `auth` is null when there is no app client."""
    auth: dict[str, Any] | None = None
    if outputs.get("WebClientId"):
        auth = {"issuer": outputs["WebIssuer"], "clientId": outputs["WebClientId"], "scope": "openid email profile"}
        domain = outputs.get("WebSignInDomain", "").rstrip("/")
        if domain:  # else the app reads the endpoints from the issuer's discovery document
            if not domain.startswith("https://"):
                domain = f"https://{domain}"
            auth["authorizationEndpoint"] = f"{domain}/oauth2/authorize"
            auth["tokenEndpoint"] = f"{domain}/oauth2/token"
    return {"apiUrl": outputs["ApiUrl"].rstrip("/"), "auth": auth}


def files(dist: Path, config: dict[str, Any]) -> list[tuple[str, bytes, str, str]]:
    """(key, body, content type, cache control) of every object to upload."""
    if not (dist / "index.html").is_file():
        raise SystemExit(f"{dist} has no index.html: run `make web` first")
    out = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file() and p.name != "config.json"):
        rel = path.relative_to(dist).as_posix()
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        cache = IMMUTABLE if rel.startswith("assets/") else REVALIDATE
        out.append((PREFIX + rel, path.read_bytes(), kind, cache))
    out.append((PREFIX + "config.json", json.dumps(config, indent=2).encode(), "application/json", REVALIDATE))
    return out


def publish(s3: Any, bucket: str, objects: list[tuple[str, bytes, str, str]]) -> list[str]:
    """Upload `objects`, then delete what earlier builds left under app/; the keys deleted."""
    for key, body, kind, cache in objects:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=kind, CacheControl=cache)
    keep = {key for key, *_ in objects}
    stale = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
             for o in page.get("Contents", []) if o["Key"] not in keep]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start:start + 1000]]})
    return stale


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m local.deploy_web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the deployed stack's name (samconfig.toml's stack_name)")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    outputs = stack_outputs(session.client("cloudformation"), args.stack)
    config = app_config(outputs)
    objects = files(WEB_DIST, config)
    stale = publish(session.client("s3"), outputs["WebBucketName"], objects)
    session.client("cloudfront").create_invalidation(
        DistributionId=outputs["WebDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 2, "Items": ["/app/index.html", "/app/config.json"]},
                           "CallerReference": f"deploy-web-{time.time_ns()}"},
    )
    print(f"uploaded {len(objects)} files to s3://{outputs['WebBucketName']}/{PREFIX} "
          f"({len(stale)} stale removed); sign-in: {'user pool' if config['auth'] else 'none configured'}")
    print(f"open {outputs.get('WebUrl', '(WebUrl output missing)')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
