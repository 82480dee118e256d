"""Property-based fuzzing of every operation in the server's own OpenAPI document.

Schemathesis reads /openapi.json from a real ``hotoku serve`` and throws generated
requests (valid and invalid: wrong types, odd strings, missing fields) at each
operation with the admin token, so writes reach the store instead of stopping at
401. The only property checked is that nothing answers 5xx: bad input is a 4xx
ProblemDetails, never an internal error. Operations added later (subscriptions,
temporal) are picked up from the document without changes here.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation

from server import LiveServer

pytestmark = pytest.mark.slow

# 25 examples per operation keeps a backend well under a minute (30-odd operations).
MAX_EXAMPLES = 25
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # each example is a network round trip, not CPU time
    suppress_health_check=list(HealthCheck),  # generation speed is not what is under test
    database=None,  # the server is fresh every run; replaying old examples buys nothing
    derandomize=True,  # the same examples every run, so a CI failure can be replayed exactly
)


def fuzz_operation(op: APIOperation, headers: dict[str, str]) -> str | None:
    """Fuzz one operation; the shrunk failing request (as curl) and response, or None."""
    # Valid and invalid inputs alike: a malformed request must get a 4xx, never a 5xx.
    cases = st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE))

    @FUZZ_SETTINGS
    @given(case=cases)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=30)

    try:
        run()
    # FailureGroup (a BaseExceptionGroup, so not caught by `except Exception`) carries the
    # response and a curl reproduction in its message; anything else is reported as it is.
    except (FailureGroup, Exception) as exc:
        return f"{op.label}: {exc}"
    return None


def test_no_server_errors(live_server: LiveServer) -> None:
    # The Python API is driven by hand: schemathesis.pytest.from_fixture() (the way to load
    # a schema from a fixture-provided URL) reads request.node._nodeid, which pytest 9
    # no longer has (AttributeError), and schema.parametrize() needs the URL at import time.
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json", wait_for_schema=10)
    operations, failures = 0, []
    for result in schema.get_all_operations():
        op = result.ok()  # raises on an operation the document describes invalidly
        operations += 1
        if (failure := fuzz_operation(op, live_server.headers)) is not None:
            failures.append(failure)
    assert operations >= 16, f"only {operations} operations in /openapi.json"
    assert not failures, f"{len(failures)} of {operations} operations answered 5xx:\n\n" + "\n\n".join(failures)
