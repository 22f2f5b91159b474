"""The admin: brands, catalogue and shows.

Creation and status changes go through the services (``shows.services``), so the
admin validates exactly like every other interface: a show's status moves only
through the Start/End actions, and a catalogue upload is all or nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from shows import services
from shows.exceptions import CatalogImportError, InvalidTransition, ShowfloorError
from shows.models import (
    Brand,
    LineupItem,
    Membership,
    Product,
    Restriction,
    RoomAudit,
    Show,
    User,
    Variant,
)
from shows.services import moderation as services_moderation
from shows.services.catalog import ISO_CURRENCIES

CATALOG_MAX_BYTES = 5 * 1024 * 1024


# --- Users --------------------------------------------------------------------


class UserCreationForm(BaseUserCreationForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = ("email", "display_name")

    def save(self, commit: bool = True) -> User:
        user: User = super().save(commit=False)
        user.email = user.email.strip().lower()
        user.username = user.email
        if commit:
            user.save()
        return user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):  # type: ignore[type-arg]
    add_form = UserCreationForm
    list_display = ("email", "display_name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "display_name")
    ordering = ("email",)
    fieldsets = (
        (None, {"fields": ("email", "display_name", "password")}),
        (
            gettext_lazy("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups")},
        ),
        (gettext_lazy("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "display_name", "password1", "password2"),
            },
        ),
    )
    readonly_fields = ("last_login", "date_joined")

    def save_model(
        self, request: HttpRequest, obj: User, form: forms.ModelForm[User], change: bool
    ) -> None:
        obj.username = obj.email
        super().save_model(request, obj, form, change)


# --- Brands -------------------------------------------------------------------


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 1
    autocomplete_fields = ("user",)


class CatalogUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Catalogue CSV"),
        help_text=gettext_lazy(
            "UTF-8 with a header row: product_slug, product_name, sku, "
            "variant_name, price, currency, stock (optional: description, "
            "image_url). All rows are checked first; one invalid row and "
            "nothing is imported."
        ),
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > CATALOG_MAX_BYTES:
            raise ValidationError(_("The file is larger than 5 MB."))
        try:
            return str(upload.read().decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise ValidationError(
                _("The file is not UTF-8 text. Export the CSV as UTF-8.")
            ) from exc


class BrandForm(forms.ModelForm):  # type: ignore[type-arg]
    blocked_words = forms.CharField(
        label=gettext_lazy("Blocked words"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy(
            "One word or phrase per line. Chat messages containing one are "
            "shown only to their author and the brand's staff."
        ),
    )

    class Meta:
        model = Brand
        fields = ("name", "slug", "description")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            words = self.instance.blocked_words.values_list("word", flat=True)
            self.fields["blocked_words"].initial = "\n".join(words)

    def clean_blocked_words(self) -> list[str]:
        words = [w.strip() for w in self.cleaned_data["blocked_words"].splitlines()]
        if any(len(w) > 60 for w in words):
            raise ValidationError(_("A blocked word has at most 60 characters."))
        return [w for w in words if w]


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = BrandForm
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline,)
    change_form_template = "admin/shows/brand/change_form.html"

    def save_related(
        self,
        request: HttpRequest,
        form: forms.ModelForm[Brand],
        formsets: Any,
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        if "blocked_words" in form.changed_data or not change:
            services_moderation.blocked_words_set(
                brand=form.instance, words=form.cleaned_data["blocked_words"]
            )

    def save_model(
        self,
        request: HttpRequest,
        obj: Brand,
        form: forms.ModelForm[Brand],
        change: bool,
    ) -> None:
        if change:
            editable = {"name", "slug", "description"}
            fields = [f for f in form.changed_data if f in editable]
            if fields:
                obj.save(update_fields=fields)
            return
        created = services.brand_create(name=obj.name, slug=obj.slug)
        if obj.description:
            created.description = obj.description
            created.save(update_fields=["description"])
        obj.pk = created.pk
        obj.refresh_from_db()

    def save_formset(
        self,
        request: HttpRequest,
        form: forms.ModelForm[Brand],
        formset: Any,
        change: bool,
    ) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        memberships = formset.save(commit=False)
        for gone in formset.deleted_objects:
            gone.delete()
        for membership in memberships:
            if membership.pk is None:
                services.membership_set(
                    brand=form.instance, user=membership.user, role=membership.role
                )
            else:
                membership.save(update_fields=["user", "role"])

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/import-catalog/",
                self.admin_site.admin_view(self.import_catalog_view),
                name="shows_brand_import_catalog",
            )
        ]
        return own + super().get_urls()

    def import_catalog_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Upload a catalogue CSV for one brand: every row is validated, errors
        are listed with their line numbers, and nothing is written unless all
        rows are valid."""
        brand = get_object_or_404(Brand, pk=object_id)
        if not self.has_change_permission(request, brand):
            raise PermissionDenied
        form = CatalogUploadForm(request.POST or None, request.FILES or None)
        errors: list[tuple[int, str]] = []
        if request.method == "POST" and form.is_valid():
            try:
                result = services.catalog_import(
                    brand=brand, text=form.cleaned_data["file"]
                )
            except CatalogImportError as exc:
                errors = exc.errors
                self.message_user(
                    request,
                    ngettext(
                        "Nothing was imported: %(count)d line of the file needs "
                        "fixing.",
                        "Nothing was imported: %(count)d lines of the file need "
                        "fixing.",
                        len(errors),
                    )
                    % {"count": len(errors)},
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    _(
                        "Catalogue imported. Products: %(pc)d created, %(pu)d "
                        "updated. Variants: %(vc)d created, %(vu)d updated."
                    )
                    % {
                        "pc": result.products_created,
                        "pu": result.products_updated,
                        "vc": result.variants_created,
                        "vu": result.variants_updated,
                    },
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:shows_brand_change", args=[brand.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": brand,
            "brand": brand,
            "form": form,
            "errors": errors,
            "title": _("Import a catalogue for %(brand)s") % {"brand": brand.name},
        }
        status = 400 if errors or form.errors else 200
        return render(
            request, "admin/shows/brand/import_catalog.html", context, status=status
        )


# --- Products -----------------------------------------------------------------


class VariantForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Variant
        fields = ("sku", "name", "price_minor", "currency", "stock_available")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Stock moves while the page is open (sales, holds): the page carries
        # the figure it showed, so "changed" means the person edited it, and a
        # price edit never writes back a stock figure that is already stale.
        self.fields["stock_available"].show_hidden_initial = True

    def clean_currency(self) -> str:
        currency = str(self.cleaned_data["currency"]).strip().upper()
        if currency not in ISO_CURRENCIES:
            raise ValidationError(
                _("“%(code)s” is not an ISO 4217 currency code.") % {"code": currency}
            )
        return currency

    def clean_price_minor(self) -> int:
        price = int(self.cleaned_data["price_minor"])
        if price < 0:
            raise ValidationError(_("A price cannot be negative."))
        return price

    def clean_stock_available(self) -> int:
        stock = int(self.cleaned_data["stock_available"])
        if stock < 0:
            raise ValidationError(_("Stock cannot be negative."))
        return stock


class VariantInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Variant
    form = VariantForm
    extra = 1


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "brand", "slug", "created_at")
    list_filter = ("brand",)
    search_fields = ("name", "slug", "variants__sku")
    prepopulated_fields = {"slug": ("name",)}
    list_select_related = ("brand",)
    inlines = (VariantInline,)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # Uploaded in the brand workspace, which checks it and makes its thumbnails.
    readonly_fields = ("image",)

    def save_model(
        self,
        request: HttpRequest,
        obj: Product,
        form: forms.ModelForm[Product],
        change: bool,
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.product_create(
            brand=obj.brand,
            name=obj.name,
            slug=obj.slug,
            description=obj.description,
            image_url=obj.image_url,
            requires_shipping=obj.requires_shipping,
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    def save_formset(
        self,
        request: HttpRequest,
        form: forms.ModelForm[Product],
        formset: Any,
        change: bool,
    ) -> None:
        if formset.model is not Variant:
            super().save_formset(request, form, formset, change)
            return
        formset.save(commit=False)
        for gone in formset.deleted_objects:
            gone.delete()
        for variant in formset.new_objects:
            services.variant_create(
                product=form.instance,
                sku=variant.sku,
                name=variant.name,
                price_minor=variant.price_minor,
                currency=variant.currency,
                stock_available=variant.stock_available,
            )
        for variant, fields in formset.changed_objects:
            services.variant_update(variant=variant, fields=fields)


# --- Shows --------------------------------------------------------------------


class LineupFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    def clean(self) -> None:
        super().clean()
        brand_id = self.instance.brand_id
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            product = data.get("product")
            if (
                product is not None
                and not data.get("DELETE")
                and brand_id is not None
                and product.brand_id != brand_id
            ):
                raise ValidationError(
                    _("“%(product)s” belongs to another brand.") % {"product": product}
                )


class LineupItemInline(admin.TabularInline):  # type: ignore[type-arg]
    model = LineupItem
    formset = LineupFormSet
    extra = 1
    ordering = ("position", "id")
    autocomplete_fields = ("product",)


@admin.register(Show)
class ShowAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("title", "brand", "status", "scheduled_at", "private")
    list_filter = ("status", "brand")
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    list_select_related = ("brand",)
    date_hierarchy = "scheduled_at"
    inlines = (LineupItemInline,)
    actions = ("start_shows", "end_shows")
    # The status moves only through the actions (the services validate it).
    readonly_fields = ("status", "started_at", "ended_at", "media_node", "created_at")
    fields = (
        "brand",
        "slug",
        "title",
        "description",
        "scheduled_at",
        "access_code",
        "status",
        "started_at",
        "ended_at",
        "media_node",
        "created_at",
    )

    @admin.display(boolean=True, description=gettext_lazy("private"))
    def private(self, obj: Show) -> bool:
        return obj.is_private

    def get_readonly_fields(
        self, request: HttpRequest, obj: Show | None = None
    ) -> tuple[str, ...]:
        readonly = tuple(self.readonly_fields)
        # Moving a show to another brand would orphan its line-up.
        return (*readonly, "brand") if obj is not None else readonly

    def save_model(
        self,
        request: HttpRequest,
        obj: Show,
        form: forms.ModelForm[Show],
        change: bool,
    ) -> None:
        if change:
            editable = {"slug", "title", "description", "scheduled_at", "access_code"}
            fields = [f for f in form.changed_data if f in editable]
            if fields:
                # Only the edited fields: a concurrent "go live" is never undone.
                obj.save(update_fields=fields)
            return
        created = services.show_create(
            brand=obj.brand,
            slug=obj.slug,
            title=obj.title,
            description=obj.description,
            scheduled_at=obj.scheduled_at,
            access_code=obj.access_code,
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    def save_formset(
        self,
        request: HttpRequest,
        form: forms.ModelForm[Show],
        formset: Any,
        change: bool,
    ) -> None:
        if formset.model is not LineupItem:
            super().save_formset(request, form, formset, change)
            return
        # Sets new/changed/deleted_objects for the change message; the rows
        # themselves are replaced by the service below.
        formset.save(commit=False)
        kept = [
            (f.cleaned_data.get("position") or 0, index, f.cleaned_data["product"])
            for index, f in enumerate(formset.forms)
            if f.cleaned_data
            and f.cleaned_data.get("product") is not None
            and not f.cleaned_data.get("DELETE")
        ]
        services.lineup_set(
            show=form.instance, products=[product for *_, product in sorted(kept)]
        )

    def _transition(
        self, request: HttpRequest, queryset: QuerySet[Show], action: Any, done: str
    ) -> None:
        for show in queryset.select_related("brand"):
            try:
                action(show=show)
            except InvalidTransition as exc:
                self.message_user(request, f"{show}: {exc.message}", messages.ERROR)
            except ShowfloorError as exc:
                self.message_user(request, f"{show}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request, done % {"show": show.title}, messages.SUCCESS
                )

    @admin.action(description=gettext_lazy("Start the selected shows (go live)"))
    def start_shows(self, request: HttpRequest, queryset: QuerySet[Show]) -> None:
        self._transition(
            request, queryset, services.show_start, _("“%(show)s” is live.")
        )

    @admin.action(description=gettext_lazy("End the selected shows"))
    def end_shows(self, request: HttpRequest, queryset: QuerySet[Show]) -> None:
        self._transition(
            request, queryset, services.show_end, _("“%(show)s” has ended.")
        )


# --- The show room: review and lift restrictions ------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: object | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: object | None = None
    ) -> bool:
        return False


@admin.register(Restriction)
class RestrictionAdmin(ReadOnlyAdmin):
    list_display = ("user", "kind", "brand", "show", "until", "lifted_at", "created_by")
    list_filter = ("kind", "brand")
    search_fields = ("user__email", "user__display_name")
    list_select_related = ("user", "brand", "show", "created_by")
    actions = ("lift",)

    @admin.action(
        description=gettext_lazy("Lift the selected users' bans and time-outs"),
        permissions=["lift"],
    )
    def has_lift_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("shows.change_restriction"))

    def lift(self, request: HttpRequest, queryset: QuerySet[Restriction]) -> None:
        lifted = 0
        for brand, user in {(r.brand, r.user) for r in queryset}:
            lifted += services_moderation.restriction_lift(brand=brand, user=user)
        self.message_user(
            request,
            ngettext(
                "%(count)d restriction lifted.",
                "%(count)d restrictions lifted.",
                lifted,
            )
            % {"count": lifted},
            messages.SUCCESS,
        )


@admin.register(RoomAudit)
class RoomAuditAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "show", "user", "kind", "action", "code", "detail")
    list_filter = ("kind", "action")
    search_fields = ("user__email", "detail")
    list_select_related = ("show", "user")
