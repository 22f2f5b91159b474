"""Every request the gateway sends names only parameters Stripe publishes.

localstripe accepts what ``checkout/devstripe.py`` taught it, so it cannot say
whether production Stripe would. The ``stripe`` library can: each StripeClient
service method is annotated with the TypedDict of its parameters
(``PaymentIntentCreateParams``…), generated from Stripe's OpenAPI spec. These
tests run the real flows against localstripe, record every call the gateway
makes (through ``stripe_gateway._call``, which every call goes through) and
check each parameter name, nested ones too, and the basic type of each value
against the TypedDict of the method called.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, NotRequired, Required

import pytest
import stripe
import stripe.params
from typing_extensions import is_typeddict

from checkout import services
from checkout import stripe_gateway as gateway
from checkout.models import Order, Payment
from checkout.services.cards import saved_card_setup
from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
REQUEST_OPTIONS = set(stripe.RequestOptions.__annotations__)


# --- The checker -----------------------------------------------------------------


def params_type(method: Any) -> type:
    """The TypedDict a StripeClient service method declares for ``params``."""
    annotation = inspect.signature(method).parameters["params"].annotation
    names = set(re.findall(r"\b(\w+Params)\b", str(annotation)))
    assert len(names) == 1, f"{method.__qualname__}: no params type in {annotation}"
    found = getattr(stripe.params, names.pop())
    assert is_typeddict(found)
    return found


def _resolve(annotation: Any, module: str) -> Any:
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        return eval(annotation, vars(sys.modules[module]))  # noqa: S307  # nosec B307 - the library's own annotations
    return annotation


def problems(value: Any, annotation: Any, path: str, module: str) -> list[str]:
    """What is wrong with ``value`` as ``annotation`` (empty when nothing)."""
    annotation = _resolve(annotation, module)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (NotRequired, Required):
        return problems(value, args[0], path, module)
    if annotation is Any:
        return []
    if is_typeddict(annotation):
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        fields = annotation.__annotations__
        found: list[str] = []
        for name, item in value.items():
            where = f"{path}.{name}" if path else name
            if name not in fields or (not path and name in REQUEST_OPTIONS):
                found.append(f"{where}: not a parameter of {annotation.__name__}")
            else:
                found += problems(item, fields[name], where, annotation.__module__)
        return found
    if origin in (typing.Union, types.UnionType):
        members = [_resolve(member, module) for member in args]
        if any(typing.get_origin(m) is typing.Literal for m in members):
            # The library adds ``|str`` to every enum so that new values do not
            # break it; we hold what we send to the values it knows.
            members = [member for member in members if member is not str]
        tries = [problems(value, member, path, module) for member in members]
        if any(not tried for tried in tries):
            return []
        # The closest member's complaints (an object's unknown field, say).
        shaped = [
            tried
            for member, tried in zip(members, tries, strict=True)
            if isinstance(value, dict) and is_typeddict(member)
        ]
        return min(shaped or tries, key=len)
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {args}"]
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [p for item in value for p in problems(item, args[0], path, module)]
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        return [
            p
            for key, item in value.items()
            for p in problems(key, args[0], f"{path}[key]", module)
            + problems(item, args[1], f"{path}.{key}", module)
        ]
    if origin is not None and inspect.isclass(origin):
        # A generic class (UntypedStripeObject[str]): never what we send.
        return [f"{path}: {value!r} is not a {origin.__name__}"]
    if annotation is int and isinstance(value, bool):
        return [f"{path}: {value!r} is a bool, not an int"]
    if inspect.isclass(annotation):
        if isinstance(value, annotation):
            return []
        return [f"{path}: {value!r} is not a {annotation.__name__}"]
    return [f"{path}: cannot check {annotation!r}"]


def test_the_checker_refuses_unknown_names_and_wrong_types():
    """The check can fail: a misspelt nested name, an unknown top-level name,
    a string amount and a value no enum of the library knows are reported."""
    create = params_type(stripe.StripeClient("sk_x").v1.payment_intents.create)
    good = {
        "amount": 100,
        "currency": "eur",
        "metadata": {"order": "x"},
        "automatic_payment_methods": {"enabled": True},
        "payment_method_options": {"card": {"setup_future_usage": "off_session"}},
    }
    assert problems(good, create, "", create.__module__) == []
    bad = {
        **good,
        "amount": "100",
        "automatic_payment_methods": {"enabeld": True},
        "save_card": True,
        "payment_method_options": {"card": {"setup_future_usage": "later"}},
    }
    found = "\n".join(problems(bad, create, "", create.__module__))
    assert "amount: '100' is not a int" in found
    assert "automatic_payment_methods.enabeld: not a parameter" in found
    assert "save_card: not a parameter" in found
    assert "payment_method_options.card.setup_future_usage: 'later'" in found
    assert problems({"api_key": "sk_x"}, create, "", create.__module__)


# --- The flows -------------------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch) -> list[tuple[str, Any, dict[str, Any]]]:
    """Every call the gateway makes: (its name, the method, its params)."""
    calls: list[tuple[str, Any, dict[str, Any]]] = []
    real = gateway._call

    def record(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((what, fn, kwargs.get("params") or {}))
        return real(what, fn, *args, **kwargs)

    monkeypatch.setattr(gateway, "_call", record)
    return calls


def gateway_call_names() -> set[str]:
    """Every request kind the gateway module can send (``_call("<name>", …``)."""
    source = (ROOT / "checkout" / "stripe_gateway.py").read_text()
    return set(re.findall(r'_call\(\s*"(\w+)"', source))


def place(show, buyer, variant, **extra) -> Order:
    return services.order_create(
        show=show,
        buyer=buyer,
        variant_id=variant.pk,
        quantity=1,
        idempotency_key=new_key(),
        **extra,
    ).order


def test_every_request_of_the_flows_uses_published_parameters(
    stripe_settings, pinned, mic, guest, make_user, recorded
):
    """A guest's order paid with the test method and refunded; a signed-in
    buyer's order that saves the card; the next paid with the saved card; one
    cancelled; a return refreshed; the card removed. Every request the gateway
    can send is among them, and every one names only published parameters."""
    paid = place(pinned, guest, mic)
    services.order_pay(order=paid, buyer=guest, method="test")
    paid.refresh_from_db()
    services.order_refund(order=paid, amount_minor=1000)

    user = make_user("Checked Chris")
    buyer = services.Buyer(user=user)
    saving = place(pinned, buyer, mic, save_card=True)
    services.order_pay(order=saving, buyer=buyer, method="test")
    again = place(pinned, buyer, mic)
    assert services.order_pay(order=again, buyer=buyer, method="saved").outcome == (
        "paid"
    )
    services.order_refresh(order=place(pinned, buyer, mic))
    services.order_cancel(order=place(pinned, buyer, mic))
    services.saved_card_remove(user=user)
    # A card saved before a first bid (docs/auctions.md), and read back.
    bidder = make_user("Bidding Bea")
    setup = saved_card_setup(user=bidder)
    saved_card_setup(user=bidder, setup_id=setup.setup_id)

    assert {what for what, _, _ in recorded} == gateway_call_names()
    found: list[str] = []
    for what, method, params in recorded:
        declared = params_type(method)
        found += [
            f"{what} ({declared.__name__}) {problem}"
            for problem in problems(params, declared, "", declared.__module__)
        ]
    assert found == []
    sent = {what: params for what, _, params in recorded}
    assert sent["intent_confirm"]["return_url"].endswith(
        f"/shows/{pinned.slug}/?order={again.public_id}"
    )
    assert Payment.objects.get(order=again).status == "succeeded"
