from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from frontend.login_throttling import LOCKED_OUT_CODE, is_locked_out, lockout_message

# Our catalogue says Django's own form messages too: Django's catalogue lacks
# some of our languages (its Frisian is nearly empty), and a message in ours
# wins over Django's wherever Django shows it.
REQUIRED = _("This field is required.")
TOO_SHORT = ngettext_lazy(
    "Use at least %(limit_value)d character.",
    "Use at least %(limit_value)d characters.",
    "limit_value",
)
TOO_LONG = ngettext_lazy(
    "Use at most %(limit_value)d character.",
    "Use at most %(limit_value)d characters.",
    "limit_value",
)
TEXT_ERRORS = {"required": REQUIRED, "min_length": TOO_SHORT, "max_length": TOO_LONG}


class SignupForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={**TEXT_ERRORS, "invalid": _("Enter a valid email address.")},
    )
    display_name = forms.CharField(
        label=_("Display name"),
        max_length=50,
        help_text=_("Shown next to what you write in a show's chat."),
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
        error_messages=TEXT_ERRORS,
    )
    password = forms.CharField(
        label=_("Password"),
        min_length=8,
        help_text=_("At least 8 characters, not only digits, not a common one."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        error_messages=TEXT_ERRORS,
    )


class LockoutMessage(AuthenticationForm):
    """Says "wait N minutes" instead of "wrong password" once the login
    throttle refuses this try (frontend/login_throttling.py)."""

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except ValidationError:
            if is_locked_out(self.request):
                raise ValidationError(
                    lockout_message(self.request), code=LOCKED_OUT_CODE
                ) from None
            raise


class LoginForm(LockoutMessage):
    """Django's log-in form with its messages in our catalogue."""

    error_messages = {
        "invalid_login": _(
            "Please enter a correct %(username)s and password. Note that both "
            "fields may be case-sensitive."
        ),
        "inactive": _("This account is inactive."),
    }


class AdminLoginForm(LockoutMessage, AdminAuthenticationForm):
    """The admin's log-in form (``config/urls.py``), with the same lockout message."""


class AccessCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Access code"),
        max_length=64,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "off",
                "spellcheck": "false",
            }
        ),
        error_messages=TEXT_ERRORS,
    )
