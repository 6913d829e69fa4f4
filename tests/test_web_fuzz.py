"""Schema-driven fuzzing of the HTTP API (schemathesis over its own OpenAPI document) against a
real server: no 5xx anywhere (Redis is up, so not even the documented /health 503), every
status and content type as documented. Bounded: a few examples per operation."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from known_jobs import run_known_jobs
from schemathesis.checks import content_type_conformance, status_code_conformance

from taskqueue import TaskQueue
from taskqueue.registry import Registry

pytestmark = pytest.mark.slow
TOKEN = "fuzz-token-5d1e"
EXAMPLES = 12


def test_no_server_error_and_every_answer_as_documented(web, redis_url) -> None:
    tq = TaskQueue(redis_url, registry=Registry())
    run_known_jobs(tq, tq.registry)  # dead, scheduled and finished jobs to find
    tq.close()
    srv = web(redis_url, env={"TASKQUEUE_WEB__TOKEN": TOKEN})
    schema = schemathesis.openapi.from_url(f"{srv.base}/tasks/openapi.json")
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 26
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def fuzz(case) -> None:
            auth = {"Authorization": f"Bearer {TOKEN}"} if case.method != "GET" else {}
            response = case.call(headers=auth, timeout=30)
            assert response.status_code < 500, (case.method, case.formatted_path,
                                                 response.text[:300])  # fmt: skip
            case.validate_response(
                response, checks=[status_code_conformance, content_type_conformance]
            )

        fuzz()
