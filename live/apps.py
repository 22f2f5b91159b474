from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"

    def ready(self) -> None:
        # Runs in every process (Daphne, manage.py, the tests) before any peer
        # connection exists: refuse library versions whose private parts were
        # not checked, then install the one global patch (aioice's host
        # addresses), so no client or server gathers on every interface.
        from live.media import aioice_patches
        from live.versions import assert_checked_versions

        assert_checked_versions()
        aioice_patches.apply()
