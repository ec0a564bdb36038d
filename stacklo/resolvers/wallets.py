"""openWallet, freezeWallet (staff)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from stacklo.domain.wallets import FreezeWallet, OpenWallet
from stacklo.resolvers.errors import user_errors
from stacklo.resolvers.ids import node_id
from stacklo.schema.context import Info
from stacklo.schema.ledger import Wallet
from stacklo.schema.movements import (
    FreezeWalletInput,
    FreezeWalletPayload,
    OpenWalletInput,
    OpenWalletPayload,
)


@user_errors(OpenWalletPayload)
async def open_wallet(
    info: Info,
    input: Annotated[OpenWalletInput, strawberry.argument(description="The wallet to open.")],
) -> OpenWalletPayload:
    viewer = await info.context.require_viewer()
    wallet = await info.context.services.wallets.open(
        OpenWallet(user=viewer.user, currency=input.currency, meta=info.context.meta)
    )
    return OpenWalletPayload(wallet=Wallet.of(wallet))


@user_errors(FreezeWalletPayload)
async def freeze_wallet(
    info: Info,
    input: Annotated[
        FreezeWalletInput, strawberry.argument(description="The wallet, its new state and why.")
    ],
) -> FreezeWalletPayload:
    viewer = await info.context.require_viewer()
    wallet = await info.context.services.wallets.freeze(
        FreezeWallet(
            staff=viewer.user,
            wallet=node_id(input.wallet_id, "Wallet", ("input", "walletId")),
            frozen=input.frozen,
            reason=input.reason,
            meta=info.context.meta,
        )
    )
    return FreezeWalletPayload(wallet=Wallet.of(wallet))
