"""Accounts: one-step sign-up."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from shows.exceptions import EmailTaken, InvalidInput
from shows.models import User


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
        raise InvalidInput(str(exc.messages[0])) from exc
    if not display_name or len(display_name) > 50:
        raise InvalidInput("A display name needs 1 to 50 characters.")
    user = User(email=email, username=email, display_name=display_name)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise EmailTaken() from exc
    return user
