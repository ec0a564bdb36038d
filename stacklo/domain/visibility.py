"""Who may see or act on what: the one place that decides.

An object is visible to its owner; beyond that, staff rights come from the casbin policy
(``stacklo/auth/policy.csv``) through the ``Permissions`` port, never from a role name in
code. Resolvers, ``node()`` and field resolvers all ask here. Anything not visible is
answered exactly like something that does not exist (null, or NOT_FOUND).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from stacklo.domain.commerce import Merchant
from stacklo.domain.fx import Quote
from stacklo.domain.models import AccountKind, User, Viewer, Wallet
from stacklo.domain.ports import Permissions


class Visibility:
    def __init__(self, permissions: Permissions):
        self._permissions = permissions

    def may(self, viewer: Viewer | None, resource: str, action: str) -> bool:
        """A staff right beyond the viewer's own data (the policy's resource and action)."""
        return viewer is not None and self._permissions.allowed(viewer.user.roles, resource, action)

    def user(self, viewer: Viewer | None, user: User) -> bool:
        return viewer is not None and (
            user.id == viewer.user.id or self.may(viewer, "users", "read")
        )

    def wallet(self, viewer: Viewer | None, wallet: Wallet) -> bool:
        """Customer wallets only: platform accounts are never anyone's to see here."""
        if viewer is None or wallet.kind is not AccountKind.CUSTOMER:
            return False
        return wallet.user_id == viewer.user.id or self.may(viewer, "wallets", "read")

    def transaction(self, viewer: Viewer | None, parties: Iterable[uuid.UUID | None]) -> bool:
        """A transaction, given the owners of its wallets: its parties, and staff."""
        if viewer is None:
            return False
        return viewer.user.id in set(parties) or self.may(viewer, "transactions", "read")

    def entry(self, viewer: Viewer | None, wallet: Wallet) -> bool:
        """A ledger entry, given its account: the wallet's owner; staff see every leg."""
        if viewer is not None and wallet.user_id == viewer.user.id:
            return True
        return self.every_entry(viewer)

    def every_entry(self, viewer: Viewer | None) -> bool:
        """All of a transaction's entries (platform legs included), not only the viewer's."""
        return self.may(viewer, "transactions", "read")

    def quote(self, viewer: Viewer | None, quote: Quote) -> bool:
        """A quote is its creator's alone: it prices their money."""
        return viewer is not None and quote.user_id == viewer.user.id

    def audit_log(self, viewer: Viewer | None) -> bool:
        return self.may(viewer, "audit", "read")

    def merchant(self, viewer: Viewer | None, merchant: Merchant) -> bool:
        """A merchant's books (payable, checkouts, sales): its owner's, and staff's. Its
        public face (name, category) goes with any checkout of it."""
        return viewer is not None and (
            merchant.user_id == viewer.user.id or self.may(viewer, "merchants", "read")
        )

    def checkout(self, viewer: Viewer | None) -> bool:
        """A checkout, to anyone signed in who holds its id: the payer must see what they pay."""
        return viewer is not None

    def plan(self, viewer: Viewer | None, borrower: uuid.UUID) -> bool:
        """An installment plan, its installments and the credit profile behind it: the
        borrower's, and staff's."""
        return viewer is not None and (
            viewer.user.id == borrower or self.may(viewer, "plans", "read")
        )

    def kyc_documents(self, viewer: Viewer | None, owner: uuid.UUID) -> bool:
        """Identity documents and their download links: their owner's, and staff's."""
        return viewer is not None and (viewer.user.id == owner or self.kyc_notes(viewer))

    def kyc_notes(self, viewer: Viewer | None) -> bool:
        """A review's internal note: staff only, never the reviewed user."""
        return self.may(viewer, "kyc", "read")

    def refund_any_checkout(self, viewer: Viewer | None) -> bool:
        """Refunding a checkout of a merchant one does not own."""
        return self.may(viewer, "checkouts", "refund")
