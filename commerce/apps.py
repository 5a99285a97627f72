from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "commerce"
    verbose_name = "Commerce data"

    def ready(self) -> None:
        from . import (
            fulfilment_rules,  # noqa: F401  (auto-fulfilment: its records_written receiver)
            stock_sync,  # noqa: F401  (stock keeping: its records_written receiver)
        )
