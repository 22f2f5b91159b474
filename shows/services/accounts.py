"""Accounts: one-step sign-up."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from shows.exceptions import EmailTaken, InvalidInput
from shows.models import User


def _password_problem(error: ValidationError) -> str:
    """Django's password validators' messages, said through our catalogue:
    Django's own lacks some of our languages (its Frisian is nearly empty)."""
    params = error.params or {}
    if error.code == "password_too_short":
        count = int(params.get("min_length", 8))
        return ngettext(
            "This password is too short. It must contain at least "
            "%(min_length)d character.",
            "This password is too short. It must contain at least "
            "%(min_length)d characters.",
            count,
        ) % {"min_length": count}
    if error.code == "password_too_common":
        return _("This password is too common.")
    if error.code == "password_entirely_numeric":
        return _("This password is entirely numeric.")
    if error.code == "password_too_similar":
        return _("The password is too similar to your email address or name.")
    return " ".join(error.messages)


def user_signup(*, email: str, display_name: str, password: str) -> User:
    """Create a viewer account in one step.

    Raises ``InvalidInput`` for a bad email, name or weak password and
    ``EmailTaken`` when the address already has an account.
    """
    email = email.strip().lower()
    display_name = display_name.strip()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidInput(_("Enter a valid email address.")) from exc
    if not display_name or len(display_name) > 50:
        raise InvalidInput(_("A display name needs 1 to 50 characters."))
    user = User(email=email, username=email, display_name=display_name)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise InvalidInput(
            " ".join(_password_problem(error) for error in exc.error_list)
        ) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise EmailTaken() from exc
    return user
