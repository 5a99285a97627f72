from django.urls import path

from . import fulfilment_views, stock_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("orders/", views.order_list, name="orders"),
    path("orders.csv", views.order_csv, name="orders-csv"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("stock/", views.stock, name="stock"),
    path("stock/set/", stock_views.set_quantity, name="stock-set"),
    path("stock/upload/", stock_views.upload_csv, name="stock-upload"),
    path("stock/settings/", stock_views.save_settings, name="stock-settings"),
    path("stock/sku/<path:sku>/", stock_views.item_page, name="stock-item"),
    path("fulfilment/", fulfilment_views.fulfilment_home, name="fulfilment"),
    path("fulfilment/orders/<int:pk>/fulfil/", fulfilment_views.fulfil_order, name="fulfilment-fulfil"),
    path("fulfilment/bulk/", fulfilment_views.bulk_upload, name="fulfilment-bulk"),
    path("fulfilment/settings/", fulfilment_views.fulfilment_settings, name="fulfilment-settings"),
    path("fulfilment/rules/", fulfilment_views.rules, name="fulfilment-rules"),
    path("fulfilment/rules/<int:pk>/", fulfilment_views.rule_change, name="fulfilment-rule"),
    path("fulfilment/rules/<int:pk>/preview/", fulfilment_views.rule_preview, name="fulfilment-rule-preview"),
]
