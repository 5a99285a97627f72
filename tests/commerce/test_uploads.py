"""Manual uploads: reading CSV, JSON and XML, mapping columns, validating, importing, the pages."""

from __future__ import annotations

import io
import sys
import tracemalloc
import types
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count, Sum
from django_q.models import OrmQ, Schedule

from commerce import uploads
from commerce.models import Customer, ImportJob, ImportStatus, InventoryLevel, Order, OrderLine, Product
from commerce.upload_formats import UploadError, ValueProblem, parse_datetime, parse_decimal, read_rows
from commerce.uploads import create_job, run_job, start_import, suggest_mapping
from integrations.models import Connection
from tenants.models import AuditLog, Role

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "uploads"


@pytest.fixture(autouse=True)
def uploads_dir(settings, tmp_path):
    settings.UPLOADS_DIR = tmp_path / "uploads"
    return settings.UPLOADS_DIR


def fixture_file(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (FIXTURES / name).read_bytes())


def upload(tenant, name: str, kind: str = "orders", content: bytes | None = None, user=None) -> ImportJob:
    file = SimpleUploadedFile(name, content) if content is not None else fixture_file(name)
    return create_job(tenant, file, kind, user=user)


def run(job: ImportJob, *, mapping: dict | None = None, valid_only: bool = False, day_first: bool = False):
    assert start_import(job, mapping or job.mapping, day_first=day_first, valid_only=valid_only)
    run_job(job.pk)
    job.refresh_from_db()
    return job


def rows_of(name: str, fmt: str) -> list:
    with open(FIXTURES / name, "rb") as binary:
        return list(read_rows(binary, fmt))


# --- Reading files --------------------------------------------------------------------------------


def test_a_semicolon_csv_with_a_bom_is_read_row_by_row():
    rows = rows_of("orders_semicolon_bom.csv", "csv")
    assert [number for number, _ in rows] == [2, 3, 4, 5]
    first = rows[0][1]
    assert next(iter(first)) == "Order ID"  # the BOM is not part of the first header
    assert first["Total Amount"] == "59,90" and first["Product Name"] == "T-shirt S"


def test_a_json_array_is_read_record_by_record_with_nested_objects_flattened():
    rows = rows_of("orders.json", "json")
    assert [number for number, _ in rows] == [1, 2]
    second = rows[1][1]
    assert second["customer.email"] == "kim@example.com"
    assert second["total"] == "12" and second["price"] == "4"  # numbers stay as written
    assert second["tags"] == '["gift", "vip"]' and second["note"] == "" and second["paid"] == "true"


def test_json_lines_are_read_one_object_per_line():
    rows = rows_of("orders.jsonl", "json")
    assert [data["order_number"] for _, data in rows] == ["L-1", "L-2", "L-3"]


def test_xml_rows_take_their_child_elements_and_attributes():
    rows = rows_of("orders.xml", "xml")
    first = rows[0][1]
    assert first["id"] == "X-1" and first["currency"] == "USD"  # attributes of the row element
    assert first["date"] == "2025-06-01T12:00:00Z" and first["product"] == "Widget"
    assert first["product.sku"] == "P-1" and first["customer.name"] == "Xena Warrior"
    assert rows[1][1]["product"] == "Gadget & more"


def test_an_xml_doctype_is_refused_before_any_entity_is_expanded():
    with pytest.raises(UploadError, match="DOCTYPE"):
        rows_of("doctype.xml", "xml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[{}, ", "malformed"),
        (b'[{"a": 1}, 2]', "not a JSON object"),
        (b'[{"a": 1}] trailing', "after its closing"),
    ],
)
def test_malformed_json_is_an_upload_error(content, message):
    with pytest.raises(UploadError, match=message):
        list(read_rows(io.BytesIO(content), "json"))


def test_a_csv_in_windows_1252_is_read():
    rows = list(read_rows(io.BytesIO("id,title\n1,Café crème\n".encode("cp1252")), "csv"))
    assert rows == [(2, {"id": "1", "title": "Café crème"})]


def test_amounts_and_dates_in_common_formats_are_read():
    assert parse_decimal("1.234,50") == Decimal("1234.50")
    assert parse_decimal("$1,234.50") == Decimal("1234.50")
    assert parse_decimal("12,5") == Decimal("12.5")
    with pytest.raises(ValueProblem):
        parse_decimal("ten")
    utc, berlin = UTC, ZoneInfo("Europe/Berlin")
    assert parse_datetime("2025-03-01T10:00:00Z", tz=berlin) == datetime(2025, 3, 1, 10, tzinfo=utc)
    assert parse_datetime("2025-03-01 10:00", tz=berlin) == datetime(2025, 3, 1, 9, tzinfo=utc)
    assert parse_datetime("03/04/2025", tz=utc, day_first=True).month == 4
    assert parse_datetime("03/04/2025", tz=utc, day_first=False).month == 3
    assert parse_datetime("31/03/2025", tz=utc).day == 31  # only one reading is possible
    with pytest.raises(ValueProblem):
        parse_datetime("yesterday", tz=utc)


# --- Mapping --------------------------------------------------------------------------------------


def test_headers_are_mapped_to_fields_by_how_they_read():
    mapping = suggest_mapping(
        "orders", ["Order ID", "Created", "Total Amount", "Sub-total", "E-mail", "Qty.", "Lineitem name", "Notes"]
    )
    assert mapping["external_id"] == "Order ID" and mapping["number"] == "Order ID"
    assert mapping["placed_at"] == "Created" and mapping["total"] == "Total Amount"
    assert mapping["subtotal"] == "Sub-total" and mapping["email"] == "E-mail"
    assert mapping["quantity"] == "Qty." and mapping["line_title"] == "Lineitem name"
    assert "Notes" not in mapping.values()


def test_an_order_number_column_alone_is_also_the_order_id():
    mapping = suggest_mapping("orders", ["order_number", "order_date"])
    assert mapping["external_id"] == mapping["number"] == "order_number"


# --- Importing ------------------------------------------------------------------------------------


def test_rows_with_the_same_order_id_are_the_lines_of_one_order(tenant_a):
    job = run(upload(tenant_a, "orders_semicolon_bom.csv"))
    assert job.status == ImportStatus.DONE
    order = Order.objects.for_tenant(tenant_a).get(external_id="1001")
    assert order.currency == "EUR" and order.total == Decimal("59.90")
    assert order.email == "ana@example.com" and order.customer.first_name == "Ana"
    assert order.status == "completed"
    lines = order.lines.order_by("external_id")
    assert [(line.sku, line.quantity, line.unit_price, line.total) for line in lines] == [
        ("TEE-S", 2, Decimal("19.95"), Decimal("39.90")),
        ("CAP", 1, Decimal("20.00"), Decimal("20.00")),
    ]
    assert Order.objects.for_tenant(tenant_a).get(external_id="1003").total == Decimal("1234.50")


def test_a_channel_column_naming_a_platform_becomes_the_order_channel(tenant_a):
    run(upload(tenant_a, "orders_semicolon_bom.csv"))
    channels = dict(Order.objects.for_tenant(tenant_a).values_list("external_id", "channel"))
    assert channels == {"1001": "manual", "1002": "amazon", "1003": "tiktok"}


def test_json_xml_and_json_lines_orders_are_imported(tenant_a):
    run(upload(tenant_a, "orders.json"))
    run(upload(tenant_a, "orders.jsonl"))
    run(upload(tenant_a, "orders.xml"))
    orders = Order.objects.for_tenant(tenant_a)
    assert sorted(orders.values_list("external_id", flat=True)) == ["J-1", "J-2", "L-1", "L-2", "L-3", "X-1", "X-2"]
    line = OrderLine.objects.for_tenant(tenant_a).get(order__external_id="X-1")
    assert (line.title, line.sku, line.quantity) == ("Widget", "P-1", 5)
    assert orders.get(external_id="J-2").customer.email == "kim@example.com"


def test_totals_the_file_does_not_give_are_worked_out_from_the_lines(tenant_a):
    content = b"order,date,sku,qty,unit price,shipping\nA,2025-01-01,X,2,5.00,3\nA,2025-01-01,Y,1,1.50,3\n"
    run(upload(tenant_a, "orders.csv", content=content))
    order = Order.objects.for_tenant(tenant_a).get(external_id="A")
    assert (order.subtotal, order.shipping, order.total) == (Decimal("11.50"), Decimal("3"), Decimal("14.50"))
    assert order.currency == tenant_a.base_currency


def test_invalid_rows_are_listed_with_their_row_numbers_and_nothing_is_imported(tenant_a):
    job = run(upload(tenant_a, "orders_with_errors.csv"))
    assert job.status == ImportStatus.INVALID
    assert (job.rows_total, job.rows_valid, job.rows_invalid) == (5, 2, 3)
    problems = {(e["row"], e["column"]) for e in job.errors}
    assert problems == {
        (3, "placed_at"),
        (4, "currency"),
        (4, "total"),
        (4, "email"),
        (4, "quantity"),
        (6, "order_number"),
    }
    assert not Order.objects.for_tenant(tenant_a).exists()
    assert job.rows_imported == 0


def test_importing_the_valid_rows_skips_the_invalid_ones(tenant_a):
    job = run(upload(tenant_a, "orders_with_errors.csv"))
    job = run(job, valid_only=True)  # the same mapping: the rows are not checked a second time
    assert job.status == ImportStatus.DONE
    assert sorted(Order.objects.for_tenant(tenant_a).values_list("external_id", flat=True)) == ["2001", "2004"]
    assert (job.rows_imported, job.records_created, job.rows_invalid) == (2, 2, 3)


def test_an_order_with_an_invalid_line_is_skipped_whole(tenant_a):
    content = b"order,date,sku,qty\nA,2025-01-01,X,1\nA,2025-01-01,Y,lots\nB,2025-01-01,Z,1\n"
    run(upload(tenant_a, "orders.csv", content=content), valid_only=True)
    assert list(Order.objects.for_tenant(tenant_a).values_list("external_id", flat=True)) == ["B"]


def test_uploading_the_same_file_twice_updates_instead_of_duplicating(tenant_a):
    first = run(upload(tenant_a, "orders_semicolon_bom.csv"))
    second = run(upload(tenant_a, "orders_semicolon_bom.csv"))
    assert (first.rows_imported, first.records_created, first.records_updated) == (4, 3, 0)
    assert (second.rows_imported, second.records_created, second.records_updated) == (4, 0, 3)
    assert Order.objects.for_tenant(tenant_a).count() == 3
    assert OrderLine.objects.for_tenant(tenant_a).count() == 4
    assert Customer.objects.for_tenant(tenant_a).count() == 3


def test_rows_of_one_order_further_apart_than_a_batch_are_merged(tenant_a, monkeypatch):
    monkeypatch.setattr(uploads, "BATCH_ROWS", 1)
    content = b"order,date,sku,qty,unit price\nA,2025-01-01,X,1,2\nB,2025-01-01,Y,1,3\nA,2025-01-01,Z,2,4\n"
    run(upload(tenant_a, "orders.csv", content=content))
    order = Order.objects.for_tenant(tenant_a).get(external_id="A")
    assert sorted(order.lines.values_list("sku", flat=True)) == ["X", "Z"]
    assert order.total == Decimal("10")


def test_products_with_variants_and_stock_are_imported(tenant_a):
    job = run(upload(tenant_a, "products.csv", kind="products"))
    assert job.status == ImportStatus.DONE and job.records_created == 2
    shoe = Product.objects.for_tenant(tenant_a).get(external_id="P-1")
    assert (shoe.title, shoe.vendor, shoe.product_type, shoe.status) == ("Trail shoe", "Acme", "Shoes", "active")
    assert sorted(shoe.variants.values_list("sku", "price", "currency")) == [
        ("SHOE-41", Decimal("89.00"), "EUR"),
        ("SHOE-42", Decimal("89.00"), "EUR"),
    ]
    stock = dict(InventoryLevel.objects.for_tenant(tenant_a).values_list("variant__sku", "available"))
    assert stock == {"SHOE-41": 12, "SHOE-42": 0, "BOTTLE": -3}
    assert Product.objects.for_tenant(tenant_a).get(external_id="P-2").variants.get().currency == "USD"


def test_customers_are_imported_with_the_email_as_id_when_there_is_none(tenant_a):
    job = run(upload(tenant_a, "customers.csv", kind="customers"))
    assert job.status == ImportStatus.DONE and job.records_created == 3
    customers = {c.external_id: c for c in Customer.objects.for_tenant(tenant_a)}
    assert set(customers) == {"C-1", "C-2", "cy@example.com"}
    assert customers["C-1"].accepts_marketing and not customers["C-2"].accepts_marketing
    assert (customers["C-1"].country, customers["C-1"].phone) == ("PT", "+351 912 345 678")


def test_uploads_land_on_the_tenants_one_manual_connection_which_is_never_scheduled(
    tenant_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run(upload(tenant_a, "orders.jsonl"))
        run(upload(tenant_a, "customers.csv", kind="customers"))
    connection = Connection.objects.for_tenant(tenant_a).get()
    assert (connection.platform, connection.name, connection.enabled) == ("manual", "Manual uploads", False)
    assert connection.sync_frequency == "manual" and connection.is_commerce
    assert not Schedule.objects.filter(name=f"sync-connection-{connection.pk}").exists()
    assert set(Order.objects.values_list("connection_id", flat=True)) == {connection.pk}


def test_the_job_records_progress_and_counts(tenant_a, monkeypatch):
    monkeypatch.setattr(uploads, "BATCH_ROWS", 2)
    seen = []
    original = uploads._commit

    def spy(job, connection, batch, consumed):
        original(job, connection, batch, consumed)
        seen.append(ImportJob.objects.get(pk=job.pk).progress)

    monkeypatch.setattr(uploads, "_commit", spy)
    job = run(upload(tenant_a, "orders.jsonl"))
    assert seen == [2, 3]
    assert (job.status, job.progress, job.rows_total, job.rows_valid, job.rows_imported) == ("done", 3, 3, 3, 3)
    assert job.percent == 100 and job.started_at and job.finished_at


def test_a_finished_job_run_again_does_nothing(tenant_a):
    job = run(upload(tenant_a, "orders.jsonl"))
    Order.objects.for_tenant(tenant_a).delete()
    assert run_job(job.pk) == "nothing to do"
    assert not Order.objects.for_tenant(tenant_a).exists()
    assert run_job(999_999) == "nothing to do"


def test_an_import_delivered_again_after_its_worker_died_resumes_after_the_last_batch(tenant_a, monkeypatch):
    monkeypatch.setattr(uploads, "BATCH_ROWS", 1)
    original, calls = uploads._commit, []

    def dies_on_the_second_batch(job, connection, batch, consumed):
        calls.append(consumed)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worker is killed: nothing records the failure
        original(job, connection, batch, consumed)

    monkeypatch.setattr(uploads, "_commit", dies_on_the_second_batch)
    job = upload(tenant_a, "orders.jsonl")
    start_import(job, job.mapping, day_first=False, valid_only=False)
    with pytest.raises(KeyboardInterrupt):
        run_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.progress) == (ImportStatus.IMPORTING, 1)

    run_job(job.pk)  # the task is delivered again
    job.refresh_from_db()
    assert calls == [1, 2, 2, 3, 3]  # resumed at the second row, not from the start
    assert job.status == ImportStatus.DONE and (job.rows_imported, job.records_created) == (3, 3)
    assert Order.objects.for_tenant(tenant_a).count() == 3


def test_each_committed_batch_invalidates_the_dashboard(tenant_a, monkeypatch):
    invalidated = []
    monkeypatch.setitem(sys.modules, "commerce.metrics", types.SimpleNamespace(invalidate=invalidated.append))
    monkeypatch.setattr(uploads, "BATCH_ROWS", 2)
    run(upload(tenant_a, "orders.jsonl"))
    assert invalidated == [tenant_a.pk, tenant_a.pk]


def test_a_file_that_breaks_past_the_preview_fails_the_job_with_the_reason(tenant_a):
    records = ",".join(f'{{"order_id": "{n}", "date": "2025-01-01"}}' for n in range(uploads.COLUMN_SCAN_ROWS + 1))
    job = run(upload(tenant_a, "orders.json", content=f'[{records}, {{"order_id": '.encode()))
    assert job.status == ImportStatus.FAILED and "malformed" in job.message
    assert not Order.objects.exists()


def test_the_audit_log_records_the_upload_and_the_import(tenant_a, make_member):
    user = make_member(tenant_a, Role.EDITOR)
    job = upload(tenant_a, "orders.jsonl", user=user)
    start_import(job, job.mapping, day_first=False, valid_only=False, user=user)
    run_job(job.pk)
    entries = AuditLog.objects.for_tenant(tenant_a).order_by("created_at", "pk")
    assert list(entries.values_list("action", flat=True)) == ["upload.created", "import.started", "import.finished"]
    assert {entry.actor for entry in entries} == {user}
    assert entries.last().details["status"] == "done" and entries.last().details["created"] == 3


def test_the_dashboard_figures_include_uploaded_orders(tenant_a, tenant_b, make_connection, make_order):
    make_order(make_connection(tenant_a, "shopify"), total=Decimal("5.00"), currency="EUR")
    run(upload(tenant_a, "orders_semicolon_bom.csv"))
    by_channel = {
        row["channel"]: (row["orders"], row["revenue"])
        for row in Order.objects.for_tenant(tenant_a)
        .values("channel")
        .annotate(orders=Count("id"), revenue=Sum("total"))
    }
    assert by_channel == {
        "shopify": (1, Decimal("5.00")),
        "manual": (1, Decimal("59.90")),
        "amazon": (1, Decimal("15.00")),
        "tiktok": (1, Decimal("1234.50")),
    }
    assert not Order.objects.for_tenant(tenant_b).exists()


def test_the_cached_dashboard_figures_are_refreshed_by_an_upload(tenant_a):
    metrics = pytest.importorskip("commerce.metrics")
    period = metrics.period_for(tenant_a, "custom", start=date(2025, 2, 1), end=date(2025, 3, 31))
    assert metrics.dashboard(tenant_a, period)["orders"]["count"] == 0  # and now cached
    run(upload(tenant_a, "orders_semicolon_bom.csv"))
    assert metrics.dashboard(tenant_a, period)["orders"]["count"] == 3


def test_a_large_file_is_imported_in_bounded_memory(tenant_a, tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    notes = "x" * 3000  # wide rows, as real exports have dozens of columns
    with open(path, "w", newline="") as out:
        out.write("Order ID,Order Date,Currency,SKU,Qty,Unit Price,Notes\n")
        number = 0
        while out.tell() < 20 * 1024 * 1024:
            number += 1
            for line in range(3):
                out.write(f"{number},2025-01-01 10:00,USD,SKU-{line},1,{line + 1}.50,{notes}\n")
    with open(path, "rb") as binary:
        job = create_job(tenant_a, File(binary, name="big.csv"), "orders")

    tracemalloc.start()
    try:
        start_import(job, job.mapping, day_first=False, valid_only=False)
        run_job(job.pk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    job.refresh_from_db()
    print(f"large upload: {path.stat().st_size / 2**20:.1f} MB, {job.rows_total} rows, peak {peak / 2**20:.1f} MB")
    assert job.status == ImportStatus.DONE and job.rows_imported == 3 * number
    assert Order.objects.for_tenant(tenant_a).count() == number
    assert peak < 10 * 1024 * 1024  # half the file: reading it whole would not fit


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_large_json_and_xml_files_are_read_in_bounded_memory(tmp_path, fmt):
    path, notes = tmp_path / f"big.{fmt}", "y" * 500
    with open(path, "w") as out:
        out.write("[" if fmt == "json" else "<orders>")
        n = 0
        while out.tell() < 20 * 1024 * 1024:
            n += 1
            if fmt == "json":
                out.write(f'{"," if n > 1 else ""}{{"id": "{n}", "total": 1.5, "notes": "{notes}"}}\n')
            else:
                out.write(f'<order id="{n}"><total>1.5</total><notes>{notes}</notes></order>\n')
        out.write("]" if fmt == "json" else "</orders>")
    tracemalloc.start()
    try:
        with open(path, "rb") as binary:
            count = sum(1 for _ in read_rows(binary, fmt))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 2 * 1024 * 1024


# --- Refusing files -------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused(client, tenant_a, make_member, settings):
    settings.UPLOAD_MAX_BYTES = 100
    client.force_login(make_member(tenant_a, Role.EDITOR))
    response = client.post("/dashboard/uploads/new/", {"kind": "orders", "file": fixture_file("orders.json")})
    assert response.status_code == 400
    assert "the largest upload is 0.0 MB" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_file_with_an_unknown_extension_is_refused(client, tenant_a, make_member, uploads_dir):
    client.force_login(make_member(tenant_a, Role.EDITOR))
    file = SimpleUploadedFile("orders.xlsx", b"PK\x03\x04")
    response = client.post("/dashboard/uploads/new/", {"kind": "orders", "file": file})
    assert response.status_code == 400 and "Upload a .csv, .json or .xml file" in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("orders.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary data"),
        ("orders.json", b"<html></html>", "malformed"),
        ("orders.csv", b"id,total\n", "no rows"),
    ],
)
def test_content_that_is_not_what_its_name_says_is_refused_and_not_kept(tenant_a, uploads_dir, name, content, message):
    with pytest.raises(UploadError, match=message):
        upload(tenant_a, name, content=content)
    assert not ImportJob.objects.exists()
    assert not any(path.is_file() for path in Path(uploads_dir).rglob("*"))


def test_an_xml_upload_with_a_doctype_is_refused_on_the_page(client, tenant_a, make_member):
    client.force_login(make_member(tenant_a, Role.EDITOR))
    response = client.post("/dashboard/uploads/new/", {"kind": "orders", "file": fixture_file("doctype.xml")})
    assert response.status_code == 400 and "DOCTYPE declaration are refused" in response.content.decode()


def test_the_stored_file_is_named_by_tenant_and_job_never_by_the_client(tenant_a, uploads_dir):
    job = upload(tenant_a, "../../etc/orders.jsonl", content=(FIXTURES / "orders.jsonl").read_bytes())
    assert job.stored_path == f"{tenant_a.pk}/{job.uuid}.json"
    assert (Path(uploads_dir) / job.stored_path).is_file()
    assert job.original_filename == "orders.jsonl"


# --- Pages ----------------------------------------------------------------------------------------


def test_the_upload_pages_take_a_file_to_an_import(client, tenant_a, make_member, django_capture_on_commit_callbacks):
    client.force_login(make_member(tenant_a, Role.EDITOR))
    response = client.post(
        "/dashboard/uploads/new/", {"kind": "orders", "file": fixture_file("orders_semicolon_bom.csv")}
    )
    job = ImportJob.objects.for_tenant(tenant_a).get()
    assert response.status_code == 302 and response["Location"] == f"/dashboard/uploads/{job.pk}/"

    page = client.get(f"/dashboard/uploads/{job.pk}/").content.decode()
    assert "T-shirt S" in page  # the preview
    assert '<option value="Total Amount" selected>' in page  # the pre-filled mapping

    form = {f"map_{name}": column for name, column in job.mapping.items()} | {"day_first": "1"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/dashboard/uploads/{job.pk}/", form)
    assert response.status_code == 302 and OrmQ.objects.count() == 1
    running = client.get(f"/dashboard/uploads/{job.pk}/")
    assert running["Refresh"] == "3" and "Checking rows" in running.content.decode()

    run_job(job.pk)
    done = client.get(f"/dashboard/uploads/{job.pk}/")
    assert "Refresh" not in done
    assert "4 rows imported: 3 orders created, 0 updated" in done.content.decode()
    assert Order.objects.for_tenant(tenant_a).get(external_id="1002").placed_at.month == 3  # 02/03: day first
    history = client.get("/dashboard/uploads/").content.decode()
    assert "orders_semicolon_bom.csv" in history and "Done" in history


def test_the_mapping_form_requires_the_order_id_and_date(client, tenant_a, make_member):
    client.force_login(make_member(tenant_a, Role.EDITOR))
    job = upload(tenant_a, "orders.jsonl")
    response = client.post(f"/dashboard/uploads/{job.pk}/", {"map_external_id": "order_number"})
    assert response.status_code == 400 and "Choose the file&#x27;s column for: Placed at" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportStatus.DRAFT


def test_invalid_rows_are_shown_on_the_page_with_a_button_to_import_the_valid_ones(client, tenant_a, make_member):
    client.force_login(make_member(tenant_a, Role.EDITOR))
    job = run(upload(tenant_a, "orders_with_errors.csv"))
    page = client.get(f"/dashboard/uploads/{job.pk}/").content.decode()
    assert "“not a date” is not a date" in page and "Import the 2 valid rows" in page
    form = {f"map_{name}": column for name, column in job.mapping.items()} | {"import_valid_only": "on"}
    assert client.post(f"/dashboard/uploads/{job.pk}/", form).status_code == 302
    job.refresh_from_db()
    assert job.status == ImportStatus.IMPORTING and job.import_valid_only


def test_a_viewer_sees_the_history_but_cannot_upload(client, tenant_a, make_member):
    job = upload(tenant_a, "orders.jsonl")
    client.force_login(make_member(tenant_a, Role.VIEWER))
    history = client.get("/dashboard/uploads/")
    assert history.status_code == 200 and "orders.jsonl" in history.content.decode()
    assert 'id="new-upload"' not in history.content.decode()
    assert client.get("/dashboard/uploads/new/").status_code == 403
    response = client.post("/dashboard/uploads/new/", {"kind": "orders", "file": fixture_file("orders.jsonl")})
    assert response.status_code == 403
    detail = client.get(f"/dashboard/uploads/{job.pk}/")
    assert detail.status_code == 200 and 'id="mapping-form"' not in detail.content.decode()
    assert client.post(f"/dashboard/uploads/{job.pk}/", {}).status_code == 403
    assert ImportJob.objects.get().status == ImportStatus.DRAFT


def test_another_tenants_upload_is_a_404(client, tenant_a, tenant_b, make_member):
    theirs = upload(tenant_b, "orders.jsonl")
    client.force_login(make_member(tenant_a, Role.OWNER))
    assert client.get(f"/dashboard/uploads/{theirs.pk}/").status_code == 404
    assert client.post(f"/dashboard/uploads/{theirs.pk}/", {}).status_code == 404
    assert "orders.jsonl" not in client.get("/dashboard/uploads/").content.decode()


def test_imported_rows_land_only_in_the_uploaders_tenant(tenant_a, tenant_b):
    run(upload(tenant_a, "orders_semicolon_bom.csv"))
    run(upload(tenant_b, "orders.jsonl"))
    assert set(Order.objects.for_tenant(tenant_a).values_list("external_id", flat=True)) == {"1001", "1002", "1003"}
    assert set(Order.objects.for_tenant(tenant_b).values_list("external_id", flat=True)) == {"L-1", "L-2", "L-3"}
    assert set(Order.objects.for_tenant(tenant_a).values_list("connection__tenant", flat=True)) == {tenant_a.pk}
    assert Connection.objects.filter(platform="manual").count() == 2


def test_a_superadmin_uploads_for_a_client_in_the_admin(client, superadmin, tenant_a):
    client.force_login(superadmin)
    assert client.get("/admin/commerce/importjob/add/").status_code == 200
    response = client.post(
        "/admin/commerce/importjob/add/",
        {"tenant": tenant_a.pk, "kind": "customers", "file": fixture_file("customers.csv")},
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/commerce/importjob/{job.pk}/change/"
    assert job.tenant == tenant_a and job.created_by == superadmin

    page = client.get(f"/admin/commerce/importjob/{job.pk}/change/").content.decode()
    assert "ana@example.com" in page and 'id="mapping-form"' in page
    form = {f"map_{name}": column for name, column in job.mapping.items()}
    assert client.post(f"/admin/commerce/importjob/{job.pk}/change/", form).status_code == 302
    run_job(job.pk)
    assert Customer.objects.for_tenant(tenant_a).count() == 3


def test_the_admin_lists_uploads_filtered_by_tenant_and_status(client, superadmin, tenant_a, tenant_b):
    run(upload(tenant_a, "orders.jsonl"))
    upload(tenant_b, "customers.csv", kind="customers")
    client.force_login(superadmin)
    page = client.get(f"/admin/commerce/importjob/?tenant__id__exact={tenant_a.pk}&status__exact=done")
    assert page.status_code == 200
    assert "orders.jsonl" in page.content.decode() and "customers.csv" not in page.content.decode()


def test_a_client_user_cannot_reach_the_upload_admin(client, tenant_a, make_member):
    client.force_login(make_member(tenant_a, Role.OWNER))
    assert client.get("/admin/commerce/importjob/add/").status_code == 302  # to the admin login
