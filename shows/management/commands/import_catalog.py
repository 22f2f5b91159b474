"""``manage.py import_catalog BRAND FILE.csv``: all rows or none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shows import services
from shows.exceptions import CatalogImportError
from shows.models import Brand


class Command(BaseCommand):
    help = (
        "Create or update a brand's products and variants from a CSV file. Every "
        "row is validated first; if any row is invalid, nothing is imported and "
        "each problem is reported with its line number."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("brand", help="The brand's slug.")
        parser.add_argument("file", type=Path, help="The catalogue CSV (UTF-8).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            brand = Brand.objects.get(slug=options["brand"])
        except Brand.DoesNotExist as exc:
            raise CommandError(f"There is no brand “{options['brand']}”.") from exc
        path: Path = options["file"]
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(
                f"{path} is not UTF-8 text; export the CSV as UTF-8."
            ) from exc
        try:
            result = services.catalog_import(brand=brand, text=text)
        except CatalogImportError as exc:
            for line, problem in exc.errors:
                self.stderr.write(f"{path}:{line}: {problem}")
            raise CommandError(
                f"Nothing was imported: {len(exc.errors)} line(s) need fixing."
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported into {brand}: {result.products_created} product(s) "
                f"created, {result.products_updated} updated; "
                f"{result.variants_created} variant(s) created, "
                f"{result.variants_updated} updated."
            )
        )
