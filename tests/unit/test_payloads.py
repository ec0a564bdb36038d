"""Every mutation payload can carry userErrors alone: ``resolvers.errors.user_errors`` answers
a refused mutation with ``Payload(user_errors=[...])``, so a payload field without a default
would turn a clear userError into a 500."""

import dataclasses
from typing import Any

import pytest

from stacklo.api import schema
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.schema.common import UserError


def payload_types() -> list[type[Any]]:
    mutation = schema.get_type_by_name("Mutation")
    assert mutation is not None
    found = []
    for field in mutation.fields:  # type: ignore[attr-defined]
        origin = field.type
        if any(f.python_name == "user_errors" for f in origin.__strawberry_definition__.fields):
            found.append(origin)
    return found


@pytest.mark.parametrize("payload", payload_types(), ids=lambda t: t.__name__)
def test_a_payload_can_answer_with_user_errors_alone(payload: type[Any]) -> None:
    error = UserError.of(DomainError(ErrorCode.INVALID_INPUT, "no", ("input",)))
    answer = payload(user_errors=[error])
    assert answer.user_errors == [error]
    assert dataclasses.is_dataclass(answer)


def test_every_payload_is_found() -> None:
    assert len(payload_types()) >= 20
