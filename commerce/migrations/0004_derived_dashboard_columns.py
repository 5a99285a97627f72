# Columns derived from orders for the dashboard, added empty: 0005 fills them, 0006 requires them.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0003_dashboard_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="first_order_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="orderline",
            name="placed_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="orderline",
            name="currency",
            field=models.CharField(editable=False, max_length=3, null=True),
        ),
        migrations.AddField(
            model_name="orderline",
            name="counted",
            field=models.BooleanField(editable=False, help_text="The order is not cancelled.", null=True),
        ),
    ]
