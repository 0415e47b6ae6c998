"""Logging in and out: WeChat OAuth inside WeChat, demo personas outside it in dev."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from backend.accounts import service as accounts_service
from backend.core.errors import DomainError, Unauthenticated
from h5.page import page_router, see_other
from h5.render import Action, render, render_error, render_message
from h5.session import (
    end_session,
    forget_oauth_state,
    is_wechat,
    is_wecom,
    oauth_redirect,
    safe_next,
    session_user,
    start_session,
    take_oauth_state,
)

router = page_router()

LOGIN_AGAIN = Action("重新登录", "/h5/login")
NextParam = Annotated[str | None, Query(alias="next", max_length=512)]


@router.get("/h5/login")
async def login(request: Request, next_path: NextParam = None) -> Response:
    target = safe_next(next_path)
    if is_wechat(request):
        return oauth_redirect(request, target)
    if not accounts_service.personas_enabled():
        return render_message(
            request,
            title="请在微信中打开",
            desc=(
                "企业微信中无法登录，请复制链接到微信中打开，或在微信中关注街道公众号，从菜单“邻里”进入。"
                if is_wecom(request)
                else "请在微信中关注街道公众号，从菜单“邻里”进入本页面。"
            ),
            kind="info",
            actions=(),
        )
    personas = [
        (user, [accounts_service.ROLE_NAMES[r] for r in await accounts_service.user_roles(user)])
        for user in await accounts_service.list_personas()
    ]
    return render(request, "login.html", personas=personas, next_path=target)


@router.post("/h5/login/persona")
async def login_persona(
    request: Request,
    persona: Annotated[str, Form(max_length=32)],
    next_path: Annotated[str | None, Form(alias="next", max_length=512)] = None,
) -> Response:
    user = await accounts_service.login_persona(persona=persona)
    response = see_other(safe_next(next_path))
    start_session(request, response, user)
    return response


@router.get("/h5/auth/callback")
async def oauth_callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=256)] = None,
    state: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    try:
        target = take_oauth_state(request, state)
        if not code:
            raise Unauthenticated("您没有同意微信授权，暂时无法登录", code="wechat_login_cancelled")
        user = await accounts_service.login_official_account(code=code)
    except DomainError as exc:
        response: Response = render_error(request, exc, actions=(LOGIN_AGAIN,))
    else:
        response = RedirectResponse(target, status_code=302)
        start_session(request, response, user)
    # A state is good for one return from WeChat, whatever the outcome.
    forget_oauth_state(response)
    return response


@router.post("/h5/logout")
async def logout(request: Request) -> Response:
    user = await session_user(request)
    if user is not None:
        # Every device of the person is logged out, not only this browser.
        await accounts_service.logout(user=user)
    response = render_message(request, title="您已退出登录", kind="success", actions=(LOGIN_AGAIN,))
    end_session(response)
    return response
