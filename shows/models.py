from __future__ import annotations

import secrets
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from shows.origins import validate_embed_origins


class ShowfloorUserManager(UserManager["User"]):
    """Users sign in with their email; ``username`` is kept equal to it."""

    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:
        email = self.normalize_email(email).lower()
        extra.setdefault("username", email)
        return super().create_user(email=email, password=password, **extra)

    def create_superuser(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:
        email = self.normalize_email(email).lower()
        extra.setdefault("username", email)
        return super().create_superuser(email=email, password=password, **extra)


class User(AbstractUser):
    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(_("display name"), max_length=50)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["display_name"]

    objects: ClassVar[ShowfloorUserManager] = ShowfloorUserManager()

    def __str__(self) -> str:
        return self.display_name or self.email


class Brand(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    # Whether the brand's prices include tax (VAT-style, as shops in the EU
    # show them) or tax is added at checkout; the rates are checkout's.
    prices_include_tax = models.BooleanField(default=True)
    # The IANA zone the brand schedules its shows in (the workspace's clock).
    time_zone = models.CharField(max_length=64, default="UTC")
    # Its logo (shows/images.py makes the thumbnail at upload).
    logo = models.ImageField(upload_to="logos/", max_length=200, blank=True)
    # Its colour on its viewer pages in light mode ("#rrggbb"; empty: the
    # platform's), dark enough for white text (brand_settings checks it).
    accent_colour = models.CharField(max_length=7, blank=True)
    # The origins ("https://shop.example") whose pages may frame this brand's
    # embedded shows (frontend/embed.py sends them as frame-ancestors);
    # canonical and checked by shows/origins.py. Empty: no one may.
    embed_origins = models.JSONField(
        default=list, blank=True, validators=[validate_embed_origins]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def logo_url(self) -> str:
        """The logo's thumbnail, or ""."""
        from shows import images  # easy-thumbnails, loaded only when drawn

        return images.thumbnail_url(self.logo, "logo")


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        HOST = "host", _("Host")
        MODERATOR = "moderator", _("Moderator")

    brand = models.ForeignKey(
        Brand, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "user"], name="membership_one_per_user_and_brand"
            ),
            models.CheckConstraint(
                condition=Q(role__in=["owner", "host", "moderator"]),
                name="membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.role} of {self.brand}"


class Product(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="products")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    description = models.TextField(blank=True)
    image_url = models.URLField(blank=True)
    # An uploaded image (checked and thumbnailed by shows/images.py); where
    # there is one it is shown rather than ``image_url``.
    image = models.ImageField(upload_to="products/", max_length=200, blank=True)
    # False for what is not posted (a download, a ticket, pickup at a shop):
    # its buyers give no address and pay no shipping.
    requires_shipping = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "slug"], name="product_slug_unique_per_brand"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def picture_url(self) -> str:
        """What pages show: the uploaded image's card thumbnail, else the
        image address typed in (``image_url``), else ""."""
        from shows import images  # easy-thumbnails, loaded only when drawn

        return images.thumbnail_url(self.image) or self.image_url


class Variant(models.Model):
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="variants"
    )
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=120, blank=True)
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    stock_available = models.IntegerField(default=0)

    class Meta:
        ordering = ["product_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_minor__gte=0), name="variant_price_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(stock_available__gte=0), name="variant_stock_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"),
                name="variant_currency_iso",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} ({self.name or self.sku})"


def new_stream_key() -> str:
    return secrets.token_urlsafe(24)


class Show(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        LIVE = "live", _("Live")
        ENDED = "ended", _("Ended")

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="shows")
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    scheduled_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.SCHEDULED
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Set while the host rehearses: the stream runs for the brand's staff only
    # and the show stays scheduled for everybody else (docs/video.md).
    rehearsing_since = models.DateTimeField(null=True, blank=True)
    access_code = models.CharField(
        max_length=64,
        blank=True,
        help_text=_(
            "Leave empty for a public show; viewers of a private show need it."
        ),
    )
    stream_key = models.CharField(max_length=64, default=new_stream_key)
    media_node = models.CharField(max_length=120, blank=True)
    # Path of the recording, relative to SHOWFLOOR_RECORDINGS_DIR, once one exists.
    recording_file = models.CharField(max_length=255, blank=True)
    slow_mode_seconds = models.PositiveSmallIntegerField(default=0)
    # Since when no publisher has been streaming to the live show (stopped by
    # the encoder or lost); cleared when one connects. The sweeper ends a show
    # left like this past SHOWFLOOR_ABANDONED_SHOW_SECONDS (docs/video.md).
    publisher_gone_since = models.DateTimeField(null=True, blank=True)
    # The host's trim of the replay, in seconds of the recording: the replay
    # starts at ``replay_start_seconds`` and stops at ``replay_end_seconds``
    # (None: the recording's end).
    replay_start_seconds = models.PositiveIntegerField(default=0)
    replay_end_seconds = models.PositiveIntegerField(null=True, blank=True)
    # The picture on the home page's card and in link previews.
    cover = models.ImageField(upload_to="covers/", max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["scheduled_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["scheduled", "live", "ended"]),
                name="show_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(slow_mode_seconds__lte=120), name="show_slow_mode_max"
            ),
            models.CheckConstraint(
                condition=Q(replay_end_seconds__isnull=True)
                | Q(replay_end_seconds__gt=F("replay_start_seconds")),
                name="show_replay_trim_ordered",
            ),
        ]
        indexes = [models.Index(fields=["status", "scheduled_at"])]

    def __str__(self) -> str:
        return self.title

    @property
    def is_private(self) -> bool:
        return bool(self.access_code)

    @property
    def is_rehearsing(self) -> bool:
        """Streaming to the staff only; public paths see a scheduled show."""
        return (
            self.status == self.Status.SCHEDULED and self.rehearsing_since is not None
        )

    @property
    def cover_url(self) -> str:
        """The cover's 16:9 thumbnail for cards and link previews, or ""."""
        from shows import images  # easy-thumbnails, loaded only when drawn

        return images.thumbnail_url(self.cover, "cover")


class LineupItem(models.Model):
    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="lineup")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(default=0)
    # Comment to buy (docs/games.md): while the product is pinned, a signed-in
    # viewer who types this word in chat (case ignored, optionally followed
    # by a variant word) gets a stock hold. Empty: off.
    claim_keyword = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["show", "product"], name="lineup_product_once_per_show"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.show} #{self.position}: {self.product}"


class Pin(models.Model):
    """One pinning of a product in a show; the log drives replay chapters."""

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="pins")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    pinned_at = models.DateTimeField()
    unpinned_at = models.DateTimeField(null=True, blank=True)
    pinned_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The host left this pin out of the replay's chapters.
    hidden_in_replay = models.BooleanField(default=False)

    class Meta:
        ordering = ["pinned_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["show", "product"],
                condition=Q(unpinned_at__isnull=True),
                name="pin_one_open_per_product",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} pinned in {self.show}"


# --- The show room ----------------------------------------------------------


class ChatMessage(models.Model):
    """A chat line. ``hidden`` lines matched the brand's blocked words: they are
    kept for moderators and shown to their author only."""

    MAX_LENGTH = 500

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=MAX_LENGTH)
    hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["show", "-id"], name="chat_show_recent")]

    def __str__(self) -> str:
        return f"{self.author}: {self.text[:40]}"


class Question(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ANSWERED = "answered", _("Answered")
        DISMISSED = "dismissed", _("Dismissed")
        # Repeats an open question (``shows.similar``): kept, shown under it.
        MERGED = "merged", _("Merged")

    MAX_LENGTH = 300
    ANSWER_MAX_LENGTH = 500

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="questions")
    author = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=MAX_LENGTH)
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN
    )
    votes = models.PositiveIntegerField(default=0)
    answer = models.CharField(max_length=ANSWER_MAX_LENGTH, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A merged question: the one it repeats, and whether merging gave that
    # one the asker's vote (taken back if a host splits them again).
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="merged"
    )
    merged_vote = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-votes", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "answered", "dismissed", "merged"]),
                name="question_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="merged", merged_into__isnull=False)
                | (~Q(status="merged") & Q(merged_into__isnull=True)),
                name="question_merged_into_one",
            ),
        ]
        indexes = [models.Index(fields=["show", "status"], name="question_show_status")]

    def __str__(self) -> str:
        return self.text[:60]


class QuestionVote(models.Model):
    question = models.ForeignKey(
        Question, on_delete=models.CASCADE, related_name="vote_rows"
    )
    voter = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["question", "voter"], name="question_vote_once_per_voter"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voter} → {self.question_id}"


class Restriction(models.Model):
    """A timeout (in one show, until a time) or a ban (from all of a brand's
    shows, until lifted)."""

    class Kind(models.TextChoices):
        TIMEOUT = "timeout", _("Time-out")
        BAN = "ban", _("Ban")

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+")
    show = models.ForeignKey(
        Show, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    until = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["timeout", "ban"]), name="restriction_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind="ban") | Q(until__isnull=False, show__isnull=False),
                name="restriction_timeout_has_show_and_end",
            ),
        ]
        indexes = [models.Index(fields=["user", "brand"], name="restriction_lookup")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.user} at {self.brand}"


class BlockedWord(models.Model):
    """A word or phrase a brand keeps out of its chats (matched case-insensitively)."""

    brand = models.ForeignKey(
        Brand, on_delete=models.CASCADE, related_name="blocked_words"
    )
    word = models.CharField(max_length=60)

    class Meta:
        ordering = ["word"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "word"], name="blocked_word_once_per_brand"
            ),
        ]

    def __str__(self) -> str:
        return self.word


class RoomAudit(models.Model):
    """Every refusal in a show room and every moderation action, for review."""

    class Kind(models.TextChoices):
        REFUSAL = "refusal", _("Refusal")
        MODERATION = "moderation", _("Moderation")

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    action = models.CharField(max_length=40)
    code = models.CharField(max_length=40, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["show", "-id"], name="room_audit_recent")]

    def __str__(self) -> str:
        return f"{self.kind} {self.action} {self.code}"


# --- The brand workspace ------------------------------------------------------


class Invitation(models.Model):
    """An invitation to join a brand's team with a role, sent by email as a
    signed link (``shows/services/team.py``). ``version`` grows with every
    resend: only the newest link works."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        REVOKED = "revoked", _("Revoked")

    brand = models.ForeignKey(
        Brand, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING
    )
    # The language the email is written in.
    language = models.CharField(max_length=16, blank=True)
    version = models.PositiveIntegerField(default=1)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "email"],
                condition=Q(status="pending"),
                name="invitation_one_pending_per_email",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["owner", "host", "moderator"]),
                name="invitation_role_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "accepted", "revoked"]),
                name="invitation_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} · {self.role} of {self.brand}"


class AuditEntry(models.Model):
    """Who changed what in a brand, and when: a team change now, prices, stock
    and refunds later. ``target`` names what was changed as people read it (an
    email, a SKU); ``detail`` holds ``before``/``after`` and anything else the
    action records."""

    brand = models.ForeignKey(
        Brand, on_delete=models.CASCADE, related_name="audit_entries"
    )
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=40)
    target = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["brand", "-id"], name="audit_brand_recent")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} {self.target}"


# --- The audience: follows, reminders and the emails they bring ---------------


class Follow(models.Model):
    """A signed-in viewer follows a brand: told when its shows go live."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="follows")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="follows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "brand"], name="follow_once_per_user_and_brand"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} follows {self.brand}"


class Reminder(models.Model):
    """Someone tapped "Remind me" on a show: a signed-in viewer, or a guest by
    email, who counts only once they confirmed through the emailed link."""

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="reminders")
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # A guest's address (lower case); empty for a signed-in viewer.
    email = models.EmailField(blank=True)
    # The language the emails are written in.
    language = models.CharField(max_length=16, blank=True)
    # Where the person came from (``shows/attribution.py``: "share.whatsapp",
    # "ref.example.com", "direct"); empty for reminders older than that.
    source = models.CharField(max_length=64, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["show", "user"],
                condition=Q(user__isnull=False),
                name="reminder_once_per_user_and_show",
            ),
            models.UniqueConstraint(
                fields=["show", "email"],
                condition=Q(user__isnull=True),
                name="reminder_once_per_email_and_show",
            ),
            models.CheckConstraint(
                condition=Q(user__isnull=False, email="")
                | Q(user__isnull=True) & ~Q(email=""),
                name="reminder_user_or_email",
            ),
        ]

    def __str__(self) -> str:
        return f"remind {self.user or self.email} of {self.show}"


class NotificationSettings(models.Model):
    """What a signed-in viewer wants to be emailed about (both on by default)."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="notification_settings"
    )
    # "Starting soon" for shows they asked to be reminded of.
    before_start = models.BooleanField(default=True)
    # "Live now" for those shows and for the brands they follow.
    live_now = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notifications of {self.user}"


class Notice(models.Model):
    """One reminder email to one person about one show: the row makes it once
    (unique per show, kind and address), however often the batch runs."""

    class Kind(models.TextChoices):
        STARTING_SOON = "starting_soon", _("Starting soon")
        LIVE_NOW = "live_now", _("Live now")

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Lower case; one email per address whether it came by a reminder or a follow.
    address = models.EmailField()
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    language = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["show", "kind", "address"],
                name="notice_once_per_show_kind_and_address",
            ),
        ]
        indexes = [
            models.Index(fields=["show", "kind", "sent_at"], name="notice_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.show} to {self.address}"


class NoticeBatch(models.Model):
    """That the "starting soon" or "live now" emails of a show were asked
    for: the sweeper asks once per show and kind."""

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Notice.Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    # When its delivery task was last enqueued (a batch left unfinished by a
    # worker that died is enqueued again by the sweeper, not more often).
    enqueued_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["show", "kind"], name="notice_batch_once_per_show_and_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} batch of {self.show}"


def new_share_code() -> str:
    """64 random bits, URL-safe (11 characters): unguessable, and nothing in
    it says who shared."""
    return secrets.token_urlsafe(8)


class ShareLink(models.Model):
    """The link a viewer shares a show with: visits, reminders and orders that
    come through it are attributed to its code (``shows/attribution.py``).
    One per signed-in sharer and show; guests all share the show's one link
    without a sharer, so a guest's shares are counted by channel only."""

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="share_links")
    sharer = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    code = models.CharField(max_length=16, unique=True, default=new_share_code)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["show", "sharer"],
                condition=Q(sharer__isnull=False),
                name="share_link_once_per_sharer_and_show",
            ),
            models.UniqueConstraint(
                fields=["show"],
                condition=Q(sharer__isnull=True),
                name="share_link_once_per_show_for_guests",
            ),
        ]

    def __str__(self) -> str:
        return f"share link {self.code} of {self.show}"


# --- Live games (docs/games.md) ---------------------------------------------


class Poll(models.Model):
    """A question with two to four answers; each viewer answers once. Kept with
    the show and its replay once closed."""

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="polls")
    question = models.CharField(max_length=200)
    # The answers, in the order shown: two to four strings.
    options = models.JSONField()
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the host showed the live results to everybody, also to those who
    # have not answered (a closed poll's result is everybody's anyway).
    results_shown_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["show"],
                condition=Q(closed_at__isnull=True),
                name="poll_one_open_per_show",
            ),
        ]

    def __str__(self) -> str:
        return self.question


class PollVote(models.Model):
    """One answer per voter: a signed-in user (``u:<id>``) or a guest's
    session (``s:<key>``)."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="votes")
    voter = models.CharField(max_length=64)
    option = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["poll", "voter"], name="poll_vote_once_per_voter"
            ),
            models.CheckConstraint(
                condition=Q(option__lte=3), name="poll_vote_option_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voter} → {self.option} in {self.poll_id}"


class Giveaway(models.Model):
    """A prize drawn among the entries by a committed seed (docs/games.md):
    ``seed_hash`` is published when it opens, ``seed`` only after the draw."""

    class Eligibility(models.TextChoices):
        SIGNED_IN = "signed_in", _("Anybody signed in")
        FOLLOWERS = "followers", _("Followers of the brand")
        BUYERS = "buyers", _("Buyers in this show")

    class Entry(models.TextChoices):
        BUTTON = "button", _("A button")
        KEYWORD = "keyword", _("A word in the chat")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DRAWN = "drawn", _("Drawn")
        CLAIMED = "claimed", _("Claimed")
        UNCLAIMED = "unclaimed", _("Not claimed")
        CANCELLED = "cancelled", _("Cancelled")

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="giveaways")
    prize = models.CharField(max_length=200)
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    eligibility = models.CharField(
        max_length=16, choices=Eligibility.choices, default=Eligibility.SIGNED_IN
    )
    entry = models.CharField(max_length=16, choices=Entry.choices, default=Entry.BUTTON)
    keyword = models.CharField(max_length=20, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN
    )
    opened_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    # The commitment: hex SHA-256 of the seed, published at the start.
    seed_hash = models.CharField(max_length=64)
    # The secret seed (hex), published only once the draw is made.
    seed = models.CharField(max_length=64)
    drawn_at = models.DateTimeField(null=True, blank=True)
    # How long a winner has to claim the prize before the redraw.
    claim_seconds = models.PositiveIntegerField(default=600)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["opened_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=F("opened_at")),
                name="giveaway_closes_after_opening",
            ),
        ]

    def __str__(self) -> str:
        return self.prize


class GiveawayEntry(models.Model):
    """One entry per user; ``token`` is the entry's public name in the
    published list (the entrant can find themselves in it)."""

    giveaway = models.ForeignKey(
        Giveaway, on_delete=models.CASCADE, related_name="entries"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=32, unique=True)
    # The language the entrant entered in: the winner's email is written in it.
    language = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["giveaway", "user"], name="giveaway_entry_once_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.token} in {self.giveaway_id}"


class GiveawayDraw(models.Model):
    """One round of the draw: round 1 is the first winner, each redraw (the
    prize went unclaimed) the next round, by the same seed and method."""

    giveaway = models.ForeignKey(
        Giveaway, on_delete=models.CASCADE, related_name="draws"
    )
    round = models.PositiveSmallIntegerField()
    entry = models.ForeignKey(GiveawayEntry, on_delete=models.CASCADE, related_name="+")
    drawn_at = models.DateTimeField()
    claim_by = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round"]
        constraints = [
            models.UniqueConstraint(
                fields=["giveaway", "round"], name="giveaway_draw_once_per_round"
            ),
        ]

    def __str__(self) -> str:
        return f"round {self.round} of {self.giveaway_id}"
