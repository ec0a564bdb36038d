"""signUp, logIn, refreshSession, logOut, changePassword."""

from __future__ import annotations

from stacklo.domain.auth import SignUp
from stacklo.resolvers.errors import user_errors
from stacklo.schema.context import Info
from stacklo.schema.types import (
    AuthPayload,
    ChangePasswordInput,
    ChangePasswordPayload,
    LogInInput,
    LogOutInput,
    LogOutPayload,
    RefreshSessionInput,
    SignUpInput,
)


@user_errors(AuthPayload)
async def sign_up(info: Info, input: SignUpInput) -> AuthPayload:
    ctx = info.context
    issued = await ctx.services.auth.sign_up(
        SignUp(
            input.email, input.password, input.full_name, input.phone_number, input.home_currency
        ),
        ctx.meta,
    )
    return AuthPayload.of(issued)


@user_errors(AuthPayload)
async def log_in(info: Info, input: LogInInput) -> AuthPayload:
    return AuthPayload.of(
        await info.context.services.auth.log_in(input.email, input.password, info.context.meta)
    )


@user_errors(AuthPayload)
async def refresh_session(info: Info, input: RefreshSessionInput) -> AuthPayload:
    return AuthPayload.of(
        await info.context.services.auth.refresh(input.refresh_token, info.context.meta)
    )


@user_errors(LogOutPayload)
async def log_out(info: Info, input: LogOutInput) -> LogOutPayload:
    await info.context.services.auth.log_out(input.refresh_token, info.context.meta)
    return LogOutPayload(success=True)


@user_errors(ChangePasswordPayload)
async def change_password(info: Info, input: ChangePasswordInput) -> ChangePasswordPayload:
    viewer = await info.context.require_viewer()
    await info.context.services.auth.change_password(
        viewer.user.id,
        viewer.session_id,
        input.current_password,
        input.new_password,
        info.context.meta,
    )
    return ChangePasswordPayload(success=True)
