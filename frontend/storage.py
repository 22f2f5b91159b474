"""Static files in production: WhiteNoise's hashed, compressed copies."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]
    """Also rewrites the ES modules' own imports (``import … from
    "./room.js"``) to the hashed names. A page loads ``room.<hash>.js``; a
    module importing the plain ``./room.js`` would get a second copy of the
    room, which opens a second socket and draws everything twice."""

    support_js_module_import_aggregation = True
