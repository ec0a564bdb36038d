"""Strawberry permission classes; who may do what is ``Visibility``'s to say (casbin)."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from stacklo.domain.errors import Forbidden
from stacklo.schema.context import Info


class IsAuthenticated(BasePermission):
    message = "Authentication required."
    error_extensions = {"code": "UNAUTHENTICATED"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        # require_viewer raises UNAUTHENTICATED itself for a bad token.
        return await info.context.viewer() is not None


class Allowed(BasePermission):
    """The viewer must hold a role that the policy allows ``action`` on ``resource``."""

    message = "You are not allowed to do this."
    error_extensions = {"code": "FORBIDDEN"}

    def __init__(self, resource: str, action: str):
        self.resource = resource
        self.action = action

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = await info.context.require_viewer()
        if not info.context.services.visibility.may(viewer, self.resource, self.action):
            raise Forbidden()
        return True
