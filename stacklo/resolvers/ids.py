"""Global ids in, typed ids out: every resolver decodes its ids here, once.

A malformed id, or an id of another type, is NOT_FOUND on its input field, exactly like a
well-formed id that names nothing: a client learns nothing from the difference, and the use
cases only ever see typed values.
"""

from __future__ import annotations

import uuid

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.schema.common import node_uuid


def node_id(
    global_id: str, type_name: str, field: tuple[str, ...], message: str | None = None
) -> uuid.UUID:
    found = node_uuid(global_id, type_name)
    if found is None:
        raise DomainError(ErrorCode.NOT_FOUND, message or f"{type_name} not found.", field)
    return found


def optional_node_id(
    global_id: str | None, type_name: str, field: tuple[str, ...], message: str | None = None
) -> uuid.UUID | None:
    return None if global_id is None else node_id(global_id, type_name, field, message)
