from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("orders/", views.order_list, name="orders"),
    path("orders.csv", views.order_csv, name="orders-csv"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("stock/", views.stock, name="stock"),
]
