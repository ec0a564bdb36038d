"""signUp, logIn, refreshSession, logOut, changePassword.

The password-checking ones pass the throttles first (``stacklo/auth/throttle.py``): every
attempt counts against the client address, every wrong password against the account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import strawberry
from starlette.responses import Response

from stacklo.auth.throttle import Quota, Throttled
from stacklo.domain.auth import ChangePassword, LogIn, LogOut, RefreshSession, SignUp
from stacklo.domain.errors import DomainError, ErrorCode, RateLimited
from stacklo.resolvers.errors import user_errors
from stacklo.schema.context import Context, Info
from stacklo.schema.users import (
    AuthPayload,
    ChangePasswordInput,
    ChangePasswordPayload,
    LogInInput,
    LogOutInput,
    LogOutPayload,
    RefreshSessionInput,
    SignUpInput,
)

T = TypeVar("T")


@user_errors(AuthPayload)
async def sign_up(
    info: Info,
    input: Annotated[SignUpInput, strawberry.argument(description="The new account.")],
) -> AuthPayload:
    ctx = info.context
    await _attempt(ctx)
    issued = await _busy(
        ctx,
        lambda: ctx.services.auth.sign_up(
            SignUp(
                input.email,
                input.password,
                input.full_name,
                input.phone_number,
                input.home_currency,
                ctx.meta,
            )
        ),
    )
    return AuthPayload.of(issued)


@user_errors(AuthPayload)
async def log_in(
    info: Info,
    input: Annotated[LogInInput, strawberry.argument(description="The credentials.")],
) -> AuthPayload:
    ctx = info.context
    issued = await _guessing(
        ctx,
        input.email,
        lambda: ctx.services.auth.log_in(LogIn(input.email, input.password, ctx.meta)),
    )
    return AuthPayload.of(issued)


@user_errors(AuthPayload)
async def refresh_session(
    info: Info,
    input: Annotated[
        RefreshSessionInput, strawberry.argument(description="The refresh token to trade.")
    ],
) -> AuthPayload:
    return AuthPayload.of(
        await info.context.services.auth.refresh(
            RefreshSession(input.refresh_token, info.context.meta)
        )
    )


@user_errors(LogOutPayload)
async def log_out(
    info: Info,
    input: Annotated[
        LogOutInput, strawberry.argument(description="The refresh token of the session to end.")
    ],
) -> LogOutPayload:
    await info.context.services.auth.log_out(LogOut(input.refresh_token, info.context.meta))
    return LogOutPayload(success=True)


@user_errors(ChangePasswordPayload)
async def change_password(
    info: Info,
    input: Annotated[
        ChangePasswordInput, strawberry.argument(description="The current and new passwords.")
    ],
) -> ChangePasswordPayload:
    ctx = info.context
    viewer = await ctx.require_viewer()
    await _guessing(
        ctx,
        viewer.user.email,
        lambda: ctx.services.auth.change_password(
            ChangePassword(
                viewer.user.id,
                viewer.session_id,
                input.current_password,
                input.new_password,
                ctx.meta,
            )
        ),
    )
    return ChangePasswordPayload(success=True)


async def _attempt(ctx: Context) -> None:
    try:
        quota = await ctx.services.throttle.attempt(ctx.meta.ip_address)
    except Throttled as refused:
        _answer(ctx, refused.quota, retry_after=refused.retry_after)
        raise
    _answer(ctx, quota)


async def _guessing(ctx: Context, email: str, check: Callable[[], Awaitable[T]]) -> T:
    """Run a password check under both throttles; a wrong password counts for the account."""
    await _attempt(ctx)
    throttle = ctx.services.throttle
    try:
        await throttle.check_account(email)
    except Throttled as refused:
        _answer(ctx, refused.quota, retry_after=refused.retry_after)
        raise
    try:
        return await _busy(ctx, check)
    except DomainError as e:
        if e.code is ErrorCode.INVALID_CREDENTIALS:
            await throttle.failed(email)
        raise


async def _busy(ctx: Context, work: Callable[[], Awaitable[T]]) -> T:
    """Password hashing refused for now (too many waiting): a 429 with Retry-After too."""
    try:
        return await work()
    except RateLimited as busy:
        _refused(ctx, busy.retry_after or 1)
        raise


def _answer(ctx: Context, quota: Quota, retry_after: int | None = None) -> None:
    """The bucket's state as header fields (HTTP only); a refusal is a 429 with Retry-After."""
    if not isinstance(ctx.response, Response):
        return  # a WebSocket: the error's extensions say it all
    for name, value in quota.headers().items():
        ctx.response.headers[name] = value
    if retry_after is not None:
        _refused(ctx, retry_after)


def _refused(ctx: Context, retry_after: int) -> None:
    if isinstance(ctx.response, Response):
        ctx.response.headers["Retry-After"] = str(retry_after)
        ctx.response.status_code = 429
