"""The API contract: /api/openapi.json is a valid OpenAPI 3.1 document naming every route,
and schemathesis, calling the app from it, finds no 5xx and no response that breaks it."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def openapi_path(rule: str) -> str:
    """Flask rule -> OpenAPI path template (/x/<int(max=9):id> -> /x/{id})."""
    import re

    return re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule)


@SQLITE_ONLY
def test_document_is_valid_and_covers_every_route(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").json
    validate(doc)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items()
                  for method in ops}
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if (openapi_path(rule.rule), method) not in documented:
                missing.append((method, rule.rule))
    assert missing == []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/admin"):
                assert {"401", "403"} <= set(op["responses"]), (method, path)
                assert op["security"] == [{"bearer": []}]


@pytest.mark.heavy
def test_schemathesis_finds_no_server_error_or_schema_violation(
        app: Flask, auth: dict[str, str]) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import checks

    # Off: the limits would answer most generated calls with 429 before any validation.
    app.config["SPARKCAST"].comments_per_minute = 0
    app.config["SPARKCAST"].reactions_per_second = 0
    app.config["SSE_FEED_SECONDS"] = 0.2  # an event stream ends quickly
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    wanted = [checks.not_a_server_error, checks.status_code_conformance,
              checks.content_type_conformance, checks.response_schema_conformance,
              checks.response_headers_conformance]
    started = time.monotonic()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=auth, checks=wanted)

        run()
    assert operations >= 40
    assert time.monotonic() - started < 120
