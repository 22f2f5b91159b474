"""The demo's data: a brand with staff, a small catalogue and a few shows.

``seed_demo()`` is idempotent: a second run finds what the first one made and
reuses it. Everything is written through the services, like any other caller.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from shows import selectors, services
from shows.models import Brand, Membership, Show, User

DEMO_PASSWORD = "go-live-now-2026"  # noqa: S105  # nosec B105 - the demo's published logins
BRAND_SLUG = "nordlicht"
SHOW_SLUG = "nordlicht-launch-night"
PRIVATE_SHOW_SLUG = "nordlicht-vip-preview"
PRIVATE_SHOW_CODE = "NORDLICHT-VIP"
REPLAY_SHOW_SLUG = "nordlicht-spring-drop"

HOST_EMAIL = "host@demo.showfloor.test"
MODERATOR_EMAIL = "moderator@demo.showfloor.test"
VIEWER_EMAIL = "viewer@demo.showfloor.test"
ADMIN_EMAIL = "admin@demo.showfloor.test"

_HEADPHONES = "Over-ear, 40 h battery, active noise cancelling."
_SPEAKER = "Waterproof, fits a jacket pocket."
CATALOG_HEADER = (
    *("product_slug", "product_name", "sku", "variant_name"),
    *("price", "currency", "stock", "description"),
)
CATALOG_ROWS = [
    # product_slug, product_name, sku, variant_name, price, currency, stock, text
    ["aurora-headphones", "Aurora wireless headphones", "NL-AUR-BLK", "Midnight black",
     "149.00", "EUR", "25", _HEADPHONES],
    ["aurora-headphones", "Aurora wireless headphones", "NL-AUR-SND", "Sand",
     "149.00", "EUR", "12", _HEADPHONES],
    ["fjord-speaker", "Fjord pocket speaker", "NL-FJD-BLU", "Fjord blue",
     "59.90", "EUR", "40", _SPEAKER],
    ["fjord-speaker", "Fjord pocket speaker", "NL-FJD-RED", "Lingonberry red",
     "59.90", "EUR", "4", _SPEAKER],
    ["polar-mic", "Polar USB microphone", "NL-POL-STD", "Standard",
     "89.00", "EUR", "10", "Cardioid, studio sound for streams and calls."],
    ["braided-cable", "Braided USB-C cable (2 m)", "NL-CBL-2M", "2 m",
     "15.00", "EUR", "0", "The cable everybody forgets."],
]  # fmt: skip


def catalog_csv() -> str:
    """The demo catalogue as the CSV a brand would upload."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CATALOG_HEADER)
    writer.writerows(CATALOG_ROWS)
    return out.getvalue()


@dataclass(frozen=True)
class DemoData:
    brand: Brand
    show: Show
    private_show: Show
    host: User
    moderator: User
    viewer: User
    admin: User


def _account(email: str, display_name: str) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = services.user_signup(
            email=email, display_name=display_name, password=DEMO_PASSWORD
        )
    return user


def _admin_account() -> User:
    user = User.objects.filter(email=ADMIN_EMAIL).first()
    if user is None:
        user = User.objects.create_superuser(
            email=ADMIN_EMAIL, password=DEMO_PASSWORD, display_name="Demo admin"
        )
    return user


def _show(
    brand: Brand,
    slug: str,
    title: str,
    *,
    starts_in: timedelta,
    description: str,
    product_slugs: list[str],
    access_code: str = "",
) -> Show:
    show = Show.objects.filter(slug=slug).first()
    if show is not None:
        return show
    return services.show_create(
        brand=brand,
        slug=slug,
        title=title,
        description=description,
        scheduled_at=timezone.now() + starts_in,
        products=selectors.products_by_slug(brand=brand, slugs=product_slugs),
        access_code=access_code,
    )


def _ready_show(brand: Brand) -> Show:
    """The show to go live with: the launch night, or, once a run of the demo
    has ended it, the newest encore not yet ended, or a new encore ten minutes
    ahead with the same line-up. A demo started again always has one."""

    def launch(slug: str, title: str) -> Show:
        return _show(
            brand,
            slug,
            title,
            starts_in=timedelta(minutes=10),
            description=(
                "Hana unboxes the new Aurora headphones, compares them with the "
                "Fjord speaker and answers your questions live. Launch prices "
                "for the length of the show."
            ),
            product_slugs=["aurora-headphones", "fjord-speaker", "polar-mic"],
        )

    show = launch(SHOW_SLUG, "Launch night: Aurora headphones")
    if show.status != Show.Status.ENDED:
        return show
    encores = Show.objects.filter(slug__startswith=f"{SHOW_SLUG}-encore-")
    ready = encores.exclude(status=Show.Status.ENDED).order_by("-id").first()
    if ready is not None:
        return ready
    number = encores.count() + 1
    return launch(
        f"{SHOW_SLUG}-encore-{number}",
        f"Launch night, encore {number}: Aurora headphones",
    )


# Where the demo brand ships and its VAT: prices include tax, as in the
# four languages' markets.
DEMO_ZONE = ("Europe", ["DE", "AT", "CH", "NL", "BE", "LU", "FR"], 490, 10000)
DEMO_TAX = {"DE": 1900, "AT": 2000, "CH": 810, "NL": 2100, "BE": 2100, "FR": 2000}


def _delivery(brand: Brand) -> None:
    from checkout.services import delivery

    name, countries, rate, free_from = DEMO_ZONE
    delivery.shipping_zone_set(
        brand=brand,
        name=name,
        countries=countries,
        rate_minor=rate,
        currency="EUR",
        free_from_minor=free_from,
    )
    for country, rate_bp in {**DEMO_TAX, "": DEMO_TAX["DE"]}.items():
        delivery.tax_rate_set(brand=brand, country=country, rate_bp=rate_bp)


@transaction.atomic
def seed_demo() -> DemoData:
    """Create (or find) the demo brand, its staff, catalogue and shows.

    The main show is scheduled a few minutes ahead, so the host can go live
    from the studio right away; a private show needs ``PRIVATE_SHOW_CODE``.
    """
    host = _account(HOST_EMAIL, "Hana from Nordlicht")
    moderator = _account(MODERATOR_EMAIL, "Milo (moderator)")
    viewer = _account(VIEWER_EMAIL, "Vera Viewer")
    admin = _admin_account()

    brand = Brand.objects.filter(slug=BRAND_SLUG).first()
    if brand is None:
        brand = services.brand_create(name="Nordlicht Audio", slug=BRAND_SLUG)
        # A Berlin brand schedules its shows on Berlin's clock.
        Brand.objects.filter(pk=brand.pk).update(time_zone="Europe/Berlin")
        brand.time_zone = "Europe/Berlin"
    services.membership_set(brand=brand, user=admin, role=Membership.Role.OWNER)
    services.membership_set(brand=brand, user=host, role=Membership.Role.HOST)
    services.membership_set(brand=brand, user=moderator, role=Membership.Role.MODERATOR)
    if not brand.products.exists():
        services.catalog_import(brand=brand, text=catalog_csv())
    _delivery(brand)

    show = _ready_show(brand)
    private_show = _show(
        brand,
        PRIVATE_SHOW_SLUG,
        "VIP preview (members only)",
        starts_in=timedelta(days=1),
        description="An early look at next season's colours, for club members.",
        product_slugs=["aurora-headphones"],
        access_code=PRIVATE_SHOW_CODE,
    )
    if not Show.objects.filter(slug=REPLAY_SHOW_SLUG).exists():
        replay = _show(
            brand,
            REPLAY_SHOW_SLUG,
            "Spring drop: cables and speakers",
            starts_in=timedelta(days=-2),
            description="Last week's show.",
            product_slugs=["fjord-speaker", "braided-cable"],
        )
        services.show_start(show=replay)
        services.show_end(show=replay)
    return DemoData(
        brand=brand,
        show=show,
        private_show=private_show,
        host=host,
        moderator=moderator,
        viewer=viewer,
        admin=admin,
    )
