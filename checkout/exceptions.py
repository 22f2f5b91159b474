"""Checkout's domain errors: a stable ``code`` and a message people can read."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from shows.exceptions import ShowfloorError


class CheckoutError(ShowfloorError):
    """Base of checkout refusals; ``status`` is the HTTP status an API answers with."""

    code = "checkout_error"
    status = 400
    default_message = _("The order could not be placed.")


class SoldOut(CheckoutError):
    code = "sold_out"
    status = 409
    default_message = _("Sold out: every unit is sold or held by another buyer.")


class ShowNotLive(CheckoutError):
    code = "show_not_live"
    status = 409
    default_message = _("You can buy while the show is live.")


class NotPinned(CheckoutError):
    code = "not_pinned"
    status = 409
    default_message = _("That product is not pinned in this show right now.")


class UnknownVariant(CheckoutError):
    code = "unknown_variant"
    status = 404
    default_message = _("That product option does not exist in this show.")


class QuantityInvalid(CheckoutError):
    code = "invalid_quantity"
    status = 400
    default_message = _("Choose a quantity of at least one.")


class OverBuyerLimit(CheckoutError):
    code = "over_limit"
    status = 409
    default_message = _("That is more than one buyer may take.")


class EmailRequired(CheckoutError):
    code = "email_required"
    status = 400
    default_message = _("Enter your email address to buy as a guest.")


class IdempotencyKeyInvalid(CheckoutError):
    code = "idempotency_key_invalid"
    status = 400
    default_message = _(
        "The request needs an Idempotency-Key header (8 to 64 characters)."
    )


class IdempotencyKeyReused(CheckoutError):
    code = "idempotency_key_reused"
    status = 409
    default_message = _(
        "This Idempotency-Key belongs to another checkout: send a new one."
    )


class OrderNotFound(CheckoutError):
    code = "order_not_found"
    status = 404
    default_message = _("There is no such order.")


class OrderNotPayable(CheckoutError):
    code = "order_not_payable"
    status = 409
    default_message = _("This order can no longer be paid.")


class NoSavedCard(CheckoutError):
    code = "no_saved_card"
    status = 409
    default_message = _("There is no saved card for this account.")


class PaymentDeclined(CheckoutError):
    code = "payment_declined"
    status = 402
    default_message = _("The card was declined. Try another card.")


class PaymentMethodUnavailable(CheckoutError):
    code = "payment_method_unavailable"
    status = 400
    default_message = _("That way of paying is not available here.")


class PaymentProviderError(CheckoutError):
    code = "payment_provider_error"
    status = 502
    default_message = _("The payment service did not answer. Please try again.")


class RefundTooLarge(CheckoutError):
    code = "refund_too_large"
    status = 400
    default_message = _(
        "A refund cannot exceed what was captured and not yet refunded."
    )


class NotRefundable(CheckoutError):
    code = "not_refundable"
    status = 409
    default_message = _("Only paid orders can be refunded.")


class PaymentNotRecorded(CheckoutError):
    """A refund was reported for a payment we have not recorded yet (its
    ``payment_intent.succeeded`` is still on its way): the provider retries."""

    code = "payment_not_recorded"
    status = 409
    default_message = _("The payment of this refund is not recorded yet.")


class NotAHost(CheckoutError):
    code = "forbidden"
    status = 403
    default_message = _("Only the brand's hosts may do that.")


class SaleInvalid(CheckoutError):
    code = "sale_invalid"
    status = 400
    default_message = _("The sale needs a price, a duration and a per-buyer limit.")


class SaleRunning(CheckoutError):
    code = "sale_running"
    status = 409
    default_message = _("A sale on this product is already running.")


class TooManyReservations(CheckoutError):
    """Reservations from one address come too fast (stock hoarding)."""

    code = "rate_limited"
    status = 429
    default_message = _("Too many reservations at once. Please wait a moment.")

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        self.retry_after = max(1, round(retry_after))
        super().__init__(message)


class NotCancellable(CheckoutError):
    code = "not_cancellable"
    status = 409
    default_message = _(
        "This order can no longer be cancelled: the brand has already packed it."
    )


class FulfilmentInvalid(CheckoutError):
    code = "fulfilment_invalid"
    status = 409
    default_message = _("This order cannot take that step now.")


class TrackingInvalid(CheckoutError):
    code = "tracking_invalid"
    status = 400
    default_message = _(
        "Give the carrier, and a tracking link starting with https:// if any."
    )


class AddressInvalid(CheckoutError):
    code = "address_invalid"
    status = 400
    default_message = _("Check the delivery address.")

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        # One message per field the buyer must fix, for the form.
        self.fields = fields
        super().__init__(message)


class NotShippable(CheckoutError):
    code = "not_shippable"
    status = 409
    default_message = _("The brand does not deliver to this country.")


class AddressRequired(CheckoutError):
    code = "address_required"
    status = 400
    default_message = _("Enter the address to deliver to.")


class DeliverySettingsInvalid(CheckoutError):
    code = "delivery_settings_invalid"
    status = 400
    default_message = _(
        "Check the zone: two-letter country codes, each in one zone per "
        "currency, amounts not below zero, a tax rate from 0 to 100 %."
    )


class BagEmpty(CheckoutError):
    code = "bag_empty"
    status = 409
    default_message = _("Your bag is empty: add something, or its holds ran out.")


class BagFull(CheckoutError):
    code = "bag_full"
    status = 409
    default_message = _("Your bag is full: pay for it, or take something out.")


class BagChanged(CheckoutError):
    code = "bag_changed"
    status = 409
    default_message = _("Your bag changed meanwhile: check it and pay again.")


class CurrencyMismatch(CheckoutError):
    code = "currency_mismatch"
    status = 409
    default_message = _(
        "That is priced in another currency than your bag: pay for the bag first."
    )


class AddressCountryChanged(CheckoutError):
    code = "address_country_changed"
    status = 409
    default_message = _(
        "This order was priced for delivery to another country: choose that "
        "country in the sheet to see its shipping and tax."
    )


# --- Auctions (docs/auctions.md) ---------------------------------------------


class AuctionInvalid(CheckoutError):
    code = "auction_invalid"
    status = 400
    default_message = _(
        "The auction needs a starting price, a duration from 10 seconds to "
        "15 minutes and valid increments."
    )


class AuctionRunning(CheckoutError):
    code = "auction_running"
    status = 409
    default_message = _("An auction is already running in this show.")


class VariantRequired(CheckoutError):
    code = "variant_required"
    status = 400
    default_message = _("This product has several options: choose the one to sell.")


class AuctionNotFound(CheckoutError):
    code = "not_found"
    status = 404
    default_message = _("There is no such auction in this show.")


class AuctionClosed(CheckoutError):
    code = "auction_closed"
    status = 409
    default_message = _("This auction has ended.")


class BidTooLow(CheckoutError):
    code = "bid_too_low"
    status = 409
    default_message = _("Your bid is lower than the next amount.")
    # Losing a race to another bid is the auction working, not abuse: in a
    # storm nearly every bid is one of these, and an audit row each would
    # only slow the bids that can still win.
    audited = False

    def __init__(
        self,
        message: str | None = None,
        *,
        floor: int | None = None,
        currency: str = "",
    ) -> None:
        super().__init__(message)
        self.floor = floor
        self.currency = currency


class AlreadyLeading(CheckoutError):
    code = "already_leading"
    status = 409
    default_message = _(
        "You are already the highest bidder. You can raise your maximum instead."
    )


class CardRequired(CheckoutError):
    code = "card_required"
    status = 409
    default_message = _("Save a card before you bid: a won auction is paid with it.")


class BuyNowUnavailable(CheckoutError):
    code = "buy_now_unavailable"
    status = 409
    default_message = _("Buy now is no longer available in this auction.")
