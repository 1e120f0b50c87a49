"""Schemathesis hooks for .ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

- NDJSON request bodies (POST /api/v1/events/bulk) are sent as the generated text.
- GitHub and GitLab deliveries are authenticated with the secrets the script gives the server,
  so that the fuzz reaches their parsers instead of stopping at 401. The GitHub signature is
  the HMAC-SHA256 of the exact bytes sent, so the hook serialises the body itself.
"""

import hashlib
import hmac
import json
import os

import schemathesis

GITHUB_SECRET = os.environ.get("TFR_GITHUB_SECRET", "")
GITLAB_TOKEN = os.environ.get("TFR_GITLAB_TOKEN", "")


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    # Anything else (negative cases): one JSON document per item, or the value on one line.
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()


@schemathesis.hook
def before_call(ctx, case, kwargs):
    path = case.operation.path
    if path == "/integrations/github" and GITHUB_SECRET:
        try:
            body = json.dumps(case.body, allow_nan=False).encode()
        except (TypeError, ValueError):
            return
        kwargs["data"] = body
        digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
        case.headers = {**(case.headers or {}), "X-Hub-Signature-256": f"sha256={digest}"}
    elif path == "/integrations/gitlab" and GITLAB_TOKEN:
        case.headers = {**(case.headers or {}), "X-Gitlab-Token": GITLAB_TOKEN}
