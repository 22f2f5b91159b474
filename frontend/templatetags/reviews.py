"""Ratings on pages that list a show's line-up:
``{% lineup_ratings lineup as ratings %}`` (one query), then
``{% with rating=ratings|rating_of:product.pk %}``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

from checkout.selectors import Rating, product_ratings

register = template.Library()


@register.simple_tag
def lineup_ratings(lineup: Iterable[Any]) -> dict[int, Rating]:
    """The rating of each line-up product with a visible review."""
    return product_ratings(item.product_id for item in lineup)


@register.filter
def rating_of(ratings: dict[int, Rating], product_id: int) -> Rating | None:
    return ratings.get(product_id)
