from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from commerce import pushes

        from . import signals  # noqa: F401  (connect receivers)
        from .pushes import ConnectorPusher

        pushes.register(ConnectorPusher())
