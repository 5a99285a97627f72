import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
get_wsgi_application()  # django.setup(), as Django's own entry point does it

from config.handlers import application as _application  # noqa: E402 (needs the apps loaded)

application = _application()
