import pytest

from stacklo.auth.rbac import Authorizer
from stacklo.domain.models import Role


@pytest.mark.parametrize(
    ("roles", "resource", "action", "allowed"),
    [
        ([Role.CUSTOMER], "users", "read", False),
        ([Role.CUSTOMER], "audit", "read", False),
        ([Role.MERCHANT], "users", "read", False),
        ([Role.SUPPORT], "users", "read", True),
        ([Role.SUPPORT], "audit", "read", True),
        ([Role.SUPPORT], "users", "write", False),
        ([Role.ADMIN], "audit", "read", True),  # inherited from SUPPORT
        ([Role.ADMIN], "wallets", "freeze", True),
        ([Role.CUSTOMER, Role.SUPPORT], "users", "read", True),
        ([], "users", "read", False),
    ],
)
def test_policy(roles: list[Role], resource: str, action: str, allowed: bool) -> None:
    assert Authorizer().allowed(roles, resource, action) is allowed
