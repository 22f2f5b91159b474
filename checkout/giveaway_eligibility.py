"""The read a buyers-only giveaway asks of checkout (docs/giveaways.md): the
live game's handler passes the answer to ``shows.services.giveaways``, which
does not import checkout."""

from __future__ import annotations

from checkout.models import Order

# Paid and not given back: a refunded or cancelled order does not count.
BOUGHT = (Order.Status.PAID, Order.Status.FULFILLED)


def bought_in_show(*, show_id: int, user_id: int) -> bool:
    """Whether ``user_id`` has a paid order in the show (one query)."""
    return Order.objects.filter(
        show_id=show_id, buyer_id=user_id, status__in=BOUGHT
    ).exists()
