"""Product images: the check of an upload, its thumbnails, and their addresses.

The only module that imports easy-thumbnails. An image is stored as uploaded
(nothing is re-encoded or stripped) through Django's storage API, so the local
``MEDIA_ROOT`` in the demo and an S3 bucket (django-storages) in production
work alike. Its thumbnails are made once, when it is uploaded
(``thumbnails_make``), never while a page is being shown; they keep the image's
format (``THUMBNAIL_PRESERVE_EXTENSIONS``), so their names, and with them their
addresses, follow from the image's name: ``thumbnail_url`` reads no database
and asks the storage nothing but ``url()``, which keeps the room's snapshot at
its pinned query count.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import IO, Any

from django.core.files import File
from django.db.models.fields.files import FieldFile
from django.utils.translation import gettext as _
from easy_thumbnails.files import get_thumbnailer
from PIL import Image, UnidentifiedImageError

from shows.exceptions import ImageInvalid

MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Past this many pixels an image is refused before it is decoded (a small file
# can expand to gigabytes of pixels).
MAX_IMAGE_PIXELS = 40_000_000
# Pillow's format name → the extension the stored file gets.
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}

# The thumbnails every product image gets: the workspace's list and the
# room's product cards (shown at 64 to 72 CSS pixels, twice that for sharp
# screens).
THUMBNAILS: dict[str, dict[str, Any]] = {
    "card": {"size": (160, 160), "crop": "smart", "upscale": False},
    # A show's cover on the home page's cards and in link previews (16:9).
    "cover": {"size": (640, 360), "crop": "smart", "upscale": False},
    # A brand's logo on its page, whole (not cropped).
    "logo": {"size": (160, 160), "upscale": False},
}


def image_check(upload: IO[bytes], *, size: int | None) -> str:
    """The extension (``jpg``, ``png`` or ``webp``) of an uploaded image that
    is at most ``MAX_IMAGE_BYTES``, a JPEG, PNG or WebP by its content (not
    its name), and that Pillow reads whole. Raises ``ImageInvalid``
    (field ``image``). Leaves the file at its start."""
    if size is not None and size > MAX_IMAGE_BYTES:
        raise ImageInvalid(
            _("The image is larger than %(mb)s MB.")
            % {"mb": MAX_IMAGE_BYTES // (1024 * 1024)},
            field="image",
        )
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            kind = image.format or ""
            width, height = image.size
            if kind not in FORMATS:
                raise ImageInvalid(
                    _("Upload a JPEG, PNG or WebP image."), field="image"
                )
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageInvalid(
                    _("The image has too many pixels (at most %(mp)s million).")
                    % {"mp": MAX_IMAGE_PIXELS // 1_000_000},
                    field="image",
                )
            image.load()
    except ImageInvalid:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageInvalid(
            _(
                "This file is not an image that can be read. "
                "Upload a JPEG, PNG or WebP image."
            ),
            field="image",
        ) from exc
    except Image.DecompressionBombError as exc:
        raise ImageInvalid(
            _("The image has too many pixels (at most %(mp)s million).")
            % {"mp": MAX_IMAGE_PIXELS // 1_000_000},
            field="image",
        ) from exc
    finally:
        upload.seek(0)
    return FORMATS[kind]


def thumbnails_make(image: FieldFile, kinds: Iterable[str] = ("card",)) -> None:
    """Make the thumbnails ``kinds`` (of ``THUMBNAILS``) of a stored image, now."""
    thumbnailer = get_thumbnailer(image)
    for kind in kinds:
        thumbnailer.get_thumbnail(THUMBNAILS[kind], save=True, generate=True)


def image_store(
    field: FieldFile,
    upload: IO[bytes],
    *,
    size: int | None,
    folder: str,
    kinds: Iterable[str],
) -> str:
    """Check ``upload`` (``image_check``), store it in ``field`` under a random
    name in ``folder`` with its thumbnails ``kinds``, and return the name of
    the image it replaces ("" if none). The row is not saved here. Raises
    ``ImageInvalid`` before anything is stored."""
    extension = image_check(upload, size=size)
    replaced = field.name or ""
    field.save(f"{folder}/{uuid.uuid4().hex}.{extension}", File(upload), save=False)
    try:
        thumbnails_make(field, kinds)
    except Exception:
        thumbnails_delete(field)
        raise
    return replaced


def image_forget(field: FieldFile, name: str) -> None:
    """Delete the stored image ``name`` that ``field``'s row no longer uses."""
    if name:
        thumbnails_delete(type(field)(field.instance, field.field, name))


def thumbnails_delete(image: FieldFile) -> None:
    """Delete a stored image's thumbnails, then the image."""
    if not image or not image.name:
        return
    get_thumbnailer(image).delete_thumbnails()
    image.storage.delete(image.name)


def thumbnail_url(image: FieldFile | None, kind: str = "card") -> str:
    """The address of a stored image's thumbnail, or "" without an image.
    Computed from the image's name: no database, no storage round trip."""
    if not image:
        return ""
    thumbnailer = get_thumbnailer(image)
    name = thumbnailer.get_thumbnail_name(THUMBNAILS[kind])
    return str(thumbnailer.thumbnail_storage.url(name))
