"""The ASGI entry point: ``daphne config.asgi:application``.

HTTP goes to Django, behind ``checkout.guard`` (which answers sold-out orders
before Django runs); websockets are origin-checked against ``ALLOWED_HOSTS`` and
carry the Django session user (or an embedded show's guest token).
"""

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from checkout.guard import SoldOutGuard  # noqa: E402
from frontend.embed import EmbedSocketMiddleware  # noqa: E402
from live.hub.collector import collector  # noqa: E402
from live.routing import websocket_urlpatterns  # noqa: E402

http_application: Any = SoldOutGuard(django_asgi_app)
if settings.SHOWFLOOR_SERVE_MEDIA:
    # A media node reports its load from its first request on (routing).
    from live.media.node import StartsMediaNode

    http_application = StartsMediaNode(http_application)

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                # An embedded show's socket is its frame's guest (?embed=).
                EmbedSocketMiddleware(URLRouter(websocket_urlpatterns))
            )
        ),
    }
)

# Everything loaded so far lives as long as the process: keep it out of every
# full collection (live/hub/collector.py).
collector.freeze_loaded()
