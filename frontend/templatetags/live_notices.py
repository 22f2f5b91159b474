"""``{% live_notices %}``: on a show page of a viewer who follows brands, the
brands' ids and the notice's strings (``json_script``) and the small script
that loads the notice (``live-notice.js``, its stylesheet) the first time the
room's socket says such a brand is live (``brand.live``, docs/audience.md).
Nothing at all for anybody else, so their page weighs what it did."""

from __future__ import annotations

from typing import Any

from django import template
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from shows import discovery
from shows.models import User

register = template.Library()


@register.inclusion_tag("frontend/show/_live_notices.html", takes_context=True)
def live_notices(context: Any) -> dict[str, Any]:
    user = context.get("user")
    brands = discovery.followed_brand_ids(
        user=user if isinstance(user, User) and user.is_authenticated else None
    )
    if not brands:
        return {"notices": None}
    return {
        "notices": {
            "brands": brands,
            "live": _("%(brand)s is live now"),
            "watch": _("Watch %(title)s"),
            "dismiss": pgettext("live notice", "Dismiss"),
            "region": _("Notifications"),
            "css": static("frontend/live-notices.css"),
            "module": static("frontend/live-notice.js"),
        }
    }
