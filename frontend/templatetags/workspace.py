"""``{% has_workspace as flag %}``: whether the signed-in visitor is on any
brand's team (the header's link to the workspace), asked once per request."""

from __future__ import annotations

from typing import Any

from django import template

from shows.models import User
from shows.services import workspace

register = template.Library()

_CACHED = "_showfloor_has_workspace"


@register.simple_tag(takes_context=True)
def has_workspace(context: Any) -> bool:
    request = context.get("request")
    user = context.get("user")
    if not isinstance(user, User):
        return False
    if request is not None and hasattr(request, _CACHED):
        return bool(getattr(request, _CACHED))
    answer = workspace.has_workspace(user=user)
    if request is not None:
        setattr(request, _CACHED, answer)
    return answer
