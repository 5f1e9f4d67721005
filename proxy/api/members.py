"""Team management: /api/v1/members (list, invite, change role, remove).

The rules live in SQL (sql/functions/members): owners alone make or demote owners, the last
owner cannot leave or be demoted, admins manage the other roles, a member may remove themself.
A removed member loses access at once: a membership write invalidates that user's cached answers
(proxy/cache/dependencies.py, USER_ARGUMENT) and the streams re-check membership."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from proxy.api.fields import Body
from proxy.api.inputs import path_id
from proxy.api.route import Route

Role = Literal["owner", "admin", "manager", "staff", "viewer"]


class MemberInviteIn(Body):
    """Who to add, and with which role. Locally an unknown address becomes a user of the auth
    stand-in; with Supabase Auth an unknown address is 501 (its admin invite is not done yet)."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    role: Role


class MemberRoleIn(Body):
    """A member's new role."""

    role: Role


def member_args(body: BaseModel | None, request: web.Request) -> dict[str, Any]:
    """A member function's arguments: the path's user id and the body, if any."""
    args = body.model_dump(mode="json", exclude_none=True) if body is not None else {}
    return {"user_id": path_id(request), **args}


ROUTES: list[Route] = [
    Route(
        "GET",
        "/members",
        "list",
        "rpc/members",
        "List the organization's members with their e-mail addresses",
        "Members",
        org="arg",
        sort=("created_at", "email", "role"),
        default_sort="created_at",
    ),
    Route(
        "POST",
        "/members",
        "call",
        "rpc/invite_member",
        "Invite a user by e-mail (locally: created in the auth stand-in if missing)",
        "Members",
        body=MemberInviteIn,
        org="arg",
        status=201,
        roles="admin and owner; only an owner invites an owner",
        responses=(409, 501),
    ),
    Route(
        "PATCH",
        "/members/{id}",
        "call",
        "rpc/change_member_role",
        "Change a member's role (the path's id is the user id)",
        "Members",
        body=MemberRoleIn,
        org="arg",
        args=member_args,
        roles="admin and owner; only an owner makes or demotes an owner",
        responses=(404, 409),
    ),
    Route(
        "DELETE",
        "/members/{id}",
        "call",
        "rpc/remove_member",
        "Remove a member (any member may remove themself, except the last owner)",
        "Members",
        org="arg",
        args=member_args,
        roles="admin and owner; only an owner removes an owner; anyone themself",
        responses=(404, 409),
    ),
]
