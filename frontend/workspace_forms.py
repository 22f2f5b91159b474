"""The brand workspace's forms (frontend/workspace.py): shape only; the rules
(who may, who is on the team already, the last owner) are the services'."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from frontend.forms import TEXT_ERRORS
from shows.models import Membership

CHOICE_ERRORS = {
    **TEXT_ERRORS,
    "invalid_choice": _("Choose one of the options."),
}


def _languages() -> list[tuple[str, str]]:
    automatic = ("", str(_("Automatic")))
    return [automatic, *((code, str(name)) for code, name in settings.LANGUAGES)]


class InviteForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
        error_messages={**TEXT_ERRORS, "invalid": _("Enter a valid email address.")},
    )
    role = forms.ChoiceField(
        label=_("Role"),
        choices=Membership.Role.choices,
        initial=Membership.Role.HOST,
        error_messages=CHOICE_ERRORS,
    )
    language = forms.ChoiceField(
        label=_("Language of the email"),
        choices=_languages,
        required=False,
        help_text=_(
            "Automatic: the language they last used on Showfloor if we know "
            "it, otherwise yours."
        ),
        error_messages=CHOICE_ERRORS,
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(
        label=_("Role"), choices=Membership.Role.choices, error_messages=CHOICE_ERRORS
    )
