"""Run localstripe (a fake of Stripe's API, GPL-3.0, dev and demo only) on loopback.

``python -m checkout.devstripe --port 8420`` serves it on 127.0.0.1 only: the
package's own command binds every interface and re-pickles its whole store to a
shared file in /tmp on every write, so this runner binds loopback and keeps the
store in memory.

It also teaches localstripe (only this pinned version, checked at start) what
the production payment path sends, so tests and the demo run that path rather
than a test-mode variant of it (``extend_localstripe``):

* PaymentIntents take ``automatic_payment_methods`` (not with
  ``payment_method_types``), ``setup_future_usage`` and
  ``payment_method_options[card][setup_future_usage]``, and show them;
* ``confirm`` takes ``payment_method`` (Stripe's test ids such as
  ``pm_card_visa`` become a stored method, as at Stripe), ``return_url`` (and,
  like Stripe, refuses a server-side confirmation without one while
  redirecting methods are enabled), ``off_session`` (a card that needs 3-D
  Secure is then declined with ``authentication_required``, the intent back to
  ``requires_payment_method``) and ``setup_future_usage``;
* a succeeded intent set up for future use attaches its payment method to its
  customer, as Stripe does;
* like Stripe, a method attached to a customer is refused on an intent of no or
  another customer, a detached method is refused for good, and detaching one
  that is not attached is an error.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import socket
import subprocess  # nosec B404 - starts localstripe, our own module
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

# The version whose internals ``extend_localstripe`` patches.
LOCALSTRIPE_VERSION = "1.15.10"
USAGES = ("on_session", "off_session")


def extend_localstripe() -> None:
    """Patch localstripe's resources with what the production path sends (the
    module docstring lists it). Must run before ``localstripe.server`` is
    imported: its routes bind the extra endpoints' functions at import."""
    installed = importlib.metadata.version("localstripe")
    if installed != LOCALSTRIPE_VERSION:
        raise RuntimeError(
            f"checkout.devstripe patches localstripe {LOCALSTRIPE_VERSION}, "
            f"found {installed}"
        )
    from localstripe import resources
    from localstripe.errors import UserError

    intent_cls, method_cls = resources.PaymentIntent, resources.PaymentMethod
    as_bool = resources.try_convert_to_bool

    def refuse(message: str, code: str = "parameter_invalid") -> UserError:
        return UserError(400, message, {"code": code})

    def usage_of(value: Any, name: str) -> str | None:
        if value in (None, "", "none"):
            return None
        if value not in USAGES:
            raise refuse(f"Invalid {name}: {value!r}")
        return str(value)

    def automatic_of(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"enabled", "allow_redirects"}:
            raise refuse("Invalid automatic_payment_methods")
        enabled = as_bool(value.get("enabled"))
        redirects = value.get("allow_redirects", "always")
        if not isinstance(enabled, bool) or redirects not in ("always", "never"):
            raise refuse("Invalid automatic_payment_methods")
        return {"enabled": enabled, "allow_redirects": redirects}

    def options_of(value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        card = value.get("card", {}) if isinstance(value, dict) else None
        if not isinstance(card, dict) or set(value) - {"card"}:
            raise refuse("Invalid payment_method_options")
        if set(card) - {"setup_future_usage"}:
            raise refuse("Invalid payment_method_options[card]")
        usage = usage_of(card.get("setup_future_usage"), "setup_future_usage")
        return {"card": {"setup_future_usage": usage}} if usage else {}

    def usable_method(method_id: Any, customer: str | None) -> str:
        """A payment method an intent of ``customer`` may use; Stripe's test
        ids (``pm_card_visa``) become a stored method, as at Stripe."""
        if not isinstance(method_id, str) or not method_id:
            raise refuse("Invalid payment_method")
        method = method_cls._api_retrieve(method_id)
        if getattr(method, "_detached", False):
            raise refuse(
                "The provided PaymentMethod was detached from a Customer. "
                "It may not be used again.",
                "payment_method_unexpected_state",
            )
        owner = getattr(method, "customer", None)
        if owner and owner != customer:
            raise refuse(
                "The provided PaymentMethod is attached to another Customer: "
                "pass that customer with the PaymentIntent.",
                "payment_method_customer_mismatch",
            )
        return str(method.id)

    original_init = intent_cls.__init__

    def intent_init(
        self: Any,
        automatic_payment_methods: Any = None,
        setup_future_usage: Any = None,
        payment_method_options: Any = None,
        payment_method_types: Any = None,
        payment_method: Any = None,
        **data: Any,
    ) -> None:
        automatic = automatic_of(automatic_payment_methods)
        if automatic and payment_method_types:
            raise refuse(
                "automatic_payment_methods cannot be combined with payment_method_types"
            )
        usage = usage_of(setup_future_usage, "setup_future_usage")
        options = options_of(payment_method_options)
        if payment_method is not None:
            payment_method = usable_method(payment_method, data.get("customer"))
        original_init(
            self,
            payment_method=payment_method,
            payment_method_types=payment_method_types,
            **data,
        )
        self.automatic_payment_methods = automatic
        self.setup_future_usage = usage
        self.payment_method_options = options
        self.payment_method_types = payment_method_types or ["card"]
        self._declined = None

    original_create = intent_cls._api_create.__func__
    original_update = intent_cls._api_update.__func__

    def intent_create(cls: Any, /, return_url: Any = None, **data: Any) -> Any:
        if return_url is not None and as_bool(data.get("confirm")) is not True:
            raise refuse("return_url can only be used with confirm=true")
        return original_create(cls, **data)

    def intent_update(cls: Any, /, id: str, **data: Any) -> Any:
        intent = cls._api_retrieve(id)
        if "setup_future_usage" in data:
            data["setup_future_usage"] = usage_of(
                data["setup_future_usage"], "setup_future_usage"
            )
        if "payment_method_options" in data:
            data["payment_method_options"] = options_of(data["payment_method_options"])
        if data.get("payment_method"):
            data["payment_method"] = usable_method(
                data["payment_method"], data.get("customer", intent.customer)
            )
        return original_update(cls, id, **data)

    def intent_confirm(
        cls: Any,
        /,
        id: str,
        payment_method: Any = None,
        return_url: Any = None,
        off_session: Any = None,
        setup_future_usage: Any = None,
        **unexpected: Any,
    ) -> Any:
        if unexpected:
            raise refuse("Unexpected " + ", ".join(unexpected))
        if not isinstance(id, str) or not id.startswith("pi_"):
            raise refuse("Bad request")
        intent = cls._api_retrieve(id)
        off_session = as_bool(off_session)
        if off_session not in (None, True, False, "one_off", "recurring"):
            raise refuse("Invalid off_session")
        if intent.status not in ("requires_payment_method", "requires_confirmation"):
            raise refuse(
                "You cannot confirm this PaymentIntent because it has a status "
                f"of {intent.status}.",
                "payment_intent_unexpected_state",
            )
        automatic = intent.automatic_payment_methods or {}
        if (
            automatic.get("enabled")
            and automatic.get("allow_redirects") != "never"
            and not return_url
        ):
            raise refuse(
                "Some payment methods enabled for this PaymentIntent redirect "
                "the customer: provide a return_url.",
                "parameter_missing",
            )
        if setup_future_usage is not None:
            intent.setup_future_usage = usage_of(
                setup_future_usage, "setup_future_usage"
            )
        if payment_method is not None:
            intent.payment_method = usable_method(payment_method, intent.customer)
            # A new attempt: the failed one is history.
            intent.latest_charge = None
            intent._authentication_failed = False
            intent._declined = None
        if intent.status != "requires_confirmation":
            raise refuse("You must provide a payment_method.", "parameter_missing")
        intent._return_url = return_url
        method = method_cls._api_retrieve(intent.payment_method)
        if off_session and method._requires_authentication():
            # The bank wants the buyer, who is not there.
            intent._declined = {
                "code": "authentication_required",
                "type": "card_error",
                "message": "This payment requires authentication.",
                "payment_method": intent.payment_method,
            }
            intent.payment_method = None
            raise UserError(
                402,
                "This payment requires authentication.",
                {"code": "authentication_required", "payment_intent": intent.id},
            )
        intent._confirm(on_failure_now=intent._report_failure)
        return intent

    original_error = intent_cls.last_payment_error

    def last_payment_error(self: Any) -> Any:
        return getattr(self, "_declined", None) or original_error.fget(self)

    original_success = intent_cls._on_success

    def on_success(self: Any) -> None:
        card_usage = (self.payment_method_options.get("card") or {}).get(
            "setup_future_usage"
        )
        method = method_cls._api_retrieve(self.payment_method)
        applies = self.setup_future_usage or (
            card_usage if getattr(method, "type", "") == "card" else None
        )
        if applies and self.customer and not getattr(method, "customer", None):
            method.customer = self.customer
        original_success(self)

    original_detach = method_cls._api_detach.__func__

    def method_detach(cls: Any, /, id: str, **data: Any) -> Any:
        method = cls._api_retrieve(id)
        if getattr(method, "customer", None) is None:
            raise refuse(
                "The payment method you provided is not attached to a customer "
                "so detachment is impossible.",
                "payment_method_unexpected_state",
            )
        detached = original_detach(cls, id, **data)
        detached._detached = True
        return detached

    intent_cls.__init__ = intent_init
    intent_cls._api_create = classmethod(intent_create)
    intent_cls._api_update = classmethod(intent_update)
    intent_cls._api_confirm = classmethod(intent_confirm)
    intent_cls.last_payment_error = property(last_payment_error)
    intent_cls._on_success = on_success
    method_cls._api_detach = classmethod(method_detach)
    routed = {
        "/v1/payment_intents/{id}/confirm": intent_cls._api_confirm,
        "/v1/payment_methods/{id}/detach": method_cls._api_detach,
    }
    resources.extra_apis[:] = [
        (verb, url, routed.get(url, func)) for verb, url, func in resources.extra_apis
    ]


def serve(port: int, host: str = "127.0.0.1") -> None:
    from aiohttp import web
    from localstripe import resources

    # Keep the store in this process: no shared pickle file, no write per call.
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None
    extend_localstripe()
    from localstripe import server

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    web.run_app(server.app, sock=sock, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"localstripe exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"localstripe did not listen on 127.0.0.1:{port}")


def register_webhook(base_url: str, webhook_url: str, secret: str) -> None:
    """Make localstripe deliver its (signed) events to ``webhook_url``."""
    body = urllib.parse.urlencode({"url": webhook_url, "secret": secret}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{base_url}/_config/webhooks/showfloor",
        data=body,
        headers={"Authorization": "Bearer sk_test_showfloor"},
        method="POST",
    )
    # localstripe's loopback http:// URL, built here; never a caller's.
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310 - see above
        if response.status != 200:
            raise RuntimeError(f"localstripe refused the webhook: {response.status}")


def start_for_demo(
    webhook_url: str, secret: str, *, timeout: float = 20
) -> tuple[subprocess.Popen[bytes], str]:
    """Start localstripe as a child process on a free loopback port, wait for
    it, register ``webhook_url`` with ``secret``; returns (process, base URL).
    The caller terminates the process."""
    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603  # nosec B603 - our module, fixed arguments
        [sys.executable, "-m", "checkout.devstripe", "--port", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(port, proc, timeout)
        register_webhook(base_url, webhook_url, secret)
    except BaseException:
        proc.terminate()
        proc.wait(timeout=10)
        raise
    return proc, base_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    serve(args.port, args.host)


if __name__ == "__main__":
    main()
