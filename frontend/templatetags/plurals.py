"""Count phrases for the page's scripts: ``{% room_plurals as plurals %}``.

Each phrase comes in the two CLDR plural categories our languages use, ``one``
and ``other``; the script picks one with ``Intl.PluralRules`` for the page's
language. (gettext's rule for French counts 0 as singular, as CLDR's does.)
"""

from __future__ import annotations

from collections.abc import Callable

from django import template
from django.utils.translation import ngettext

register = template.Library()


def _forms(phrase: Callable[[int], str]) -> dict[str, str]:
    return {"one": phrase(1), "other": phrase(2)}


@register.simple_tag
def room_plurals() -> dict[str, dict[str, str]]:
    return {
        "viewers": _forms(lambda n: ngettext("%(n)s watching", "%(n)s watching", n)),
        "votes": _forms(lambda n: ngettext("%(n)s vote", "%(n)s votes", n)),
        # After a count shown on its own: "▲ Vote 3" + "votes".
        "voteWord": _forms(lambda n: ngettext("vote", "votes", n)),
    }


@register.simple_tag
def studio_plurals() -> dict[str, dict[str, str]]:
    """The studio's own count phrases (kept off the viewer's page)."""
    return {
        "similar": _forms(
            lambda n: ngettext("%(n)s similar question", "%(n)s similar questions", n)
        ),
    }
