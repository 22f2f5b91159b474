"""What the buy sheet and the studio's orders panel need from the server."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.utils import timezone, translation

from checkout import auction_cards, selectors
from checkout import stripe_gateway as gateway
from checkout.services.sales import epoch_ms

register = template.Library()


@register.simple_tag(takes_context=True)
def buy_sheet_config(context: template.Context) -> dict[str, Any]:
    """The sheet's data: the line-up's variants, open sales, the buyer's saved
    card (brand and last four only) and the publishable key, never the secret."""
    show = context["show"]
    request = context.get("request")
    user = getattr(request, "user", None)
    products = []
    for item in context.get("lineup") or []:
        products.append(
            {
                "id": item.product.pk,
                "name": item.product.name,
                "image_url": item.product.picture_url,
                "requires_shipping": item.product.requires_shipping,
                "variants": [
                    {
                        "id": v.pk,
                        "name": v.name or v.sku,
                        "price_minor": v.price_minor,
                        "currency": v.currency,
                        "stock_available": v.stock_available,
                    }
                    for v in item.product.variants.all()
                ],
            }
        )
    card = selectors.saved_card_for(user=user)
    now = timezone.now()
    api_base = settings.STRIPE_API_BASE
    return {
        "show": show.slug,
        "products": products,
        "sales": [
            {
                "sale_id": sale.pk,
                "product_id": sale.product_id,
                "price_minor": sale.price_minor,
                "currency": sale.currency,
                "per_buyer_limit": sale.per_buyer_limit,
                "ends_at": epoch_ms(sale.ends_at),
            }
            for sale in selectors.sales_open(show=show, now=now)
        ],
        "server_now": epoch_ms(now),
        "signed_in": bool(user is not None and user.is_authenticated),
        "saved_card": f"{card.brand.title()} •••• {card.last4}" if card else "",
        "test_mode": gateway.test_mode(),
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js": f"{api_base}/js.stripe.com/v3/"
        if api_base
        else settings.STRIPE_JS_URL,
        "max_per_buyer": settings.SHOWFLOOR_MAX_PER_BUYER,
        # Where the brand delivers and the buyer's saved address.
        "delivery": selectors.delivery_for_sheet(
            brand_id=show.brand_id,
            user=user,
            language=translation.get_language() or "en",
        ),
    }


@register.simple_tag
def auction_increments(lineup: Any) -> dict[str, list[list[int]]]:
    """The server's default bid steps (``[from, step]`` in minor units) for
    each currency of the line-up: the studio shows them, and sends a table
    only when the host edits it."""
    currencies = {
        variant.currency for item in lineup for variant in item.product.variants.all()
    }
    return {code: auction_cards.default_increments(code) for code in sorted(currencies)}
