"""casbin enforcer over the model and policy files beside this module."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import casbin

from stacklo.domain.models import Role

_HERE = Path(__file__).resolve().parent


class Authorizer:
    """Answers "may any of these roles do ``action`` on ``resource``?"."""

    def __init__(
        self, model: Path = _HERE / "rbac_model.conf", policy: Path = _HERE / "policy.csv"
    ):
        self._enforcer = casbin.Enforcer(str(model), str(policy))

    def allowed(self, roles: Iterable[Role], resource: str, action: str) -> bool:
        return any(bool(self._enforcer.enforce(r.value, resource, action)) for r in roles)
