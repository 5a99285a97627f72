# The line copies are required once 0005 has filled them; the indexes the dashboard reads them by.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0005_backfill_derived_dashboard_columns"),
    ]

    operations = [
        migrations.AlterField(
            model_name="orderline",
            name="placed_at",
            field=models.DateTimeField(editable=False),
        ),
        migrations.AlterField(
            model_name="orderline",
            name="currency",
            field=models.CharField(editable=False, max_length=3),
        ),
        migrations.AlterField(
            model_name="orderline",
            name="counted",
            field=models.BooleanField(editable=False, help_text="The order is not cancelled."),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["tenant", "first_order_at"], name="customer_tenant_first_order"),
        ),
        migrations.AddIndex(
            model_name="orderline",
            index=models.Index(
                fields=["tenant", "placed_at"],
                include=("counted", "currency", "sku", "title", "quantity", "total"),
                name="orderline_tenant_placed",
            ),
        ),
    ]
