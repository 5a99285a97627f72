from __future__ import annotations

import io
import logging
from io import StringIO

import pytest
from cryptography.fernet import InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db
from django.test import override_settings

from integrations.models import Connection
from tenants.fields import SecretDict, mask
from tenants.logging import RedactSecretsFilter, redact
from tenants.models import AuditLog

SECRET = "shpat_0123456789abcdef0123456789abcd"
OLD_KEY = "old-fernet-key-for-tests"
NEW_KEY = "new-fernet-key-for-tests"
STRANGER_KEY = "a-key-nobody-configured"


def raw_credentials(pk: int) -> bytes:
    """The column as stored, without the ORM decrypting it."""
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_connection WHERE id = %s", [pk])
        return bytes(cursor.fetchone()[0])


def rotate() -> str:
    out = StringIO()
    call_command("rotate_credentials", stdout=out)
    return out.getvalue()


# --- Encryption at rest ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_credentials_are_stored_encrypted(make_connection, tenant_a):
    conn = make_connection(tenant_a, credentials={"access_token": SECRET, "shop_domain": "alpha.myshopify.com"})

    stored = raw_credentials(conn.pk)

    assert stored
    assert SECRET.encode() not in stored
    assert b"alpha.myshopify.com" not in stored
    assert b"access_token" not in stored


@pytest.mark.django_db
def test_credentials_read_back_as_the_saved_dict(make_connection, tenant_a):
    conn = make_connection(tenant_a, credentials={"access_token": SECRET, "shop_domain": "alpha.myshopify.com"})

    loaded = Connection.objects.get(pk=conn.pk).credentials

    assert loaded == {"access_token": SECRET, "shop_domain": "alpha.myshopify.com"}
    assert isinstance(loaded, SecretDict)


@pytest.mark.django_db
def test_a_connection_without_credentials_reads_back_an_empty_dict(make_connection, tenant_a):
    conn = make_connection(tenant_a)

    assert Connection.objects.get(pk=conn.pk).credentials == {}


@pytest.mark.django_db
def test_dumpdata_never_exports_the_plaintext(make_connection, tenant_a):
    make_connection(tenant_a, credentials={"access_token": SECRET})
    out = StringIO()

    call_command("dumpdata", "integrations.Connection", stdout=out)

    assert SECRET not in out.getvalue()
    assert '"credentials": "***"' in out.getvalue()


# --- Printed forms --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_printing_loaded_credentials_or_the_connection_never_shows_the_secret(make_connection, tenant_a):
    conn = make_connection(tenant_a, credentials={"access_token": SECRET})
    loaded = Connection.objects.get(pk=conn.pk)

    printed = [repr(loaded.credentials), str(loaded.credentials), repr(loaded), str(loaded), f"{loaded.credentials}"]

    assert all(SECRET not in text for text in printed)
    assert repr(loaded.credentials) == "SecretDict({'access_token': '***'})"


def test_an_unsaved_connection_given_a_plain_dict_never_prints_the_secret():
    conn = Connection(platform="shopify", name="Unsaved", credentials={"access_token": SECRET})

    assert isinstance(conn.credentials, SecretDict)
    assert SECRET not in repr(conn.credentials)
    assert SECRET not in str(conn.credentials)
    assert SECRET not in repr(conn)


def test_a_plain_dict_assigned_later_is_hidden_too():
    conn = Connection(platform="shopify", name="Unsaved")

    conn.credentials = {"client_secret": SECRET}

    assert repr(conn.credentials) == "SecretDict({'client_secret': '***'})"
    assert conn.credentials["client_secret"] == SECRET


def test_mask_shows_the_last_four_characters_of_a_long_secret():
    assert mask("shpat_0123456789abcd") == "set, ending …abcd"


def test_mask_shows_only_that_a_short_secret_is_set():
    assert mask("hunter2") == "set"


@pytest.mark.parametrize("value", ["", None])
def test_mask_says_not_set_for_an_empty_value(value):
    assert mask(value) == "not set"


def test_masked_credentials_list_every_key_without_values():
    creds = SecretDict({"access_token": SECRET, "pin": "1234"})

    assert creds.masked() == {"access_token": "set, ending …abcd", "pin": "set"}


# --- Key rotation ---------------------------------------------------------------------------------


@pytest.fixture
def rows_under_old_key(make_connection, tenant_a):
    with override_settings(FERNET_KEYS=[OLD_KEY]):
        return [
            make_connection(tenant_a, name="Store one", credentials={"access_token": SECRET + "01"}),
            make_connection(tenant_a, name="Store two", credentials={"access_token": SECRET + "02"}),
        ]


def credentials_by_name() -> dict[str, str]:
    return {c.name: c.credentials["access_token"] for c in Connection.objects.all()}


@pytest.mark.django_db
def test_changing_fernet_keys_reaches_the_field_so_a_dropped_key_no_longer_decrypts(rows_under_old_key):
    with override_settings(FERNET_KEYS=[NEW_KEY]), pytest.raises(InvalidToken):
        list(Connection.objects.all())


@pytest.mark.django_db
def test_rows_under_the_old_key_still_read_with_a_new_key_put_first(rows_under_old_key):
    with override_settings(FERNET_KEYS=[NEW_KEY, OLD_KEY]):
        assert credentials_by_name() == {"Store one": SECRET + "01", "Store two": SECRET + "02"}


@pytest.mark.django_db
def test_new_writes_use_the_first_key(make_connection, tenant_a):
    with override_settings(FERNET_KEYS=[NEW_KEY, OLD_KEY]):
        conn = make_connection(tenant_a, credentials={"access_token": SECRET})

    with override_settings(FERNET_KEYS=[NEW_KEY]):
        assert Connection.objects.get(pk=conn.pk).credentials["access_token"] == SECRET


@pytest.mark.django_db
def test_rotation_reports_how_many_rows_it_re_encrypted(rows_under_old_key):
    with override_settings(FERNET_KEYS=[NEW_KEY, OLD_KEY]):
        output = rotate()

    assert "integrations.Connection.credentials: 2 of 2 rows re-encrypted" in output
    # The replaced secrets kept for webhook verification are encrypted the same way.
    assert "integrations.Connection.previous_credentials: 2 of 2 rows re-encrypted" in output
    assert "Re-encrypted 4 of 4 rows under the newest key." in output


@pytest.mark.django_db
def test_after_rotation_the_new_key_alone_reads_every_row(rows_under_old_key):
    with override_settings(FERNET_KEYS=[NEW_KEY, OLD_KEY]):
        rotate()

    with override_settings(FERNET_KEYS=[NEW_KEY]):
        assert credentials_by_name() == {"Store one": SECRET + "01", "Store two": SECRET + "02"}


@pytest.mark.django_db
def test_rotating_again_touches_no_rows(rows_under_old_key):
    with override_settings(FERNET_KEYS=[NEW_KEY, OLD_KEY]):
        rotate()
        output = rotate()

    assert "Re-encrypted 0 of 4 rows under the newest key." in output


@pytest.mark.django_db
def test_rotation_is_recorded_in_the_audit_log(rows_under_old_key):
    with override_settings(FERNET_KEYS=[NEW_KEY, OLD_KEY]):
        rotate()

    entry = AuditLog.objects.get(action="credentials.rotated")
    assert entry.details == {"rows": 4}


@pytest.mark.django_db
def test_rotation_fails_clearly_on_a_row_no_configured_key_decrypts(make_connection, tenant_a):
    with override_settings(FERNET_KEYS=[STRANGER_KEY]):
        stray = make_connection(tenant_a, credentials={"access_token": SECRET})

    with override_settings(FERNET_KEYS=[NEW_KEY, OLD_KEY]), pytest.raises(CommandError) as excinfo:
        rotate()

    assert str(excinfo.value) == (
        f"integrations.Connection #{stray.pk}: no key in FERNET_KEYS decrypts this value; "
        "add the key it was written with and run again."
    )


@pytest.mark.django_db
def test_a_failed_rotation_leaves_the_undecryptable_row_untouched(make_connection, tenant_a):
    with override_settings(FERNET_KEYS=[STRANGER_KEY]):
        stray = make_connection(tenant_a, credentials={"access_token": SECRET})
    before = raw_credentials(stray.pk)

    with override_settings(FERNET_KEYS=[NEW_KEY]), pytest.raises(CommandError):
        rotate()

    assert raw_credentials(stray.pk) == before


# --- Log redaction --------------------------------------------------------------------------------

API_KEY = "hub_0123456789ab_" + "Zx9-" * 11


def test_redact_hides_our_api_keys_but_keeps_their_prefix():
    assert redact(f"key {API_KEY} rejected") == "key hub_0123456789ab_*** rejected"


def test_redact_hides_bearer_tokens():
    assert redact(f"Bearer {SECRET}") == "Bearer ***"


def test_redact_hides_an_authorization_header():
    text = redact(f"headers: Authorization: Bearer {SECRET}")

    assert SECRET not in text
    assert "Authorization:" in text


def test_redact_hides_password_query_values():
    assert redact("POST /login?user=ann&password=hunter2hunter2&next=/") == "POST /login?user=ann&password=***&next=/"


def test_redact_hides_quoted_client_secrets():
    assert redact('{"client_id": "abc", "client_secret": "cs_9f8e7d6c5b4a"}') == (
        '{"client_id": "abc", "client_secret": "***"}'
    )


def test_redact_hides_secrets_in_a_printed_python_dict():
    assert redact(str({"access_token": SECRET, "shop": "alpha"})) == "{'access_token': '***', 'shop': 'alpha'}"


def test_redact_leaves_ordinary_text_alone():
    text = "Synced 120 orders for Alpha Goods in 3.2s"

    assert redact(text) == text


def test_a_log_record_passed_through_the_filter_does_not_contain_the_secret(caplog):
    caplog.handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("integrations.tests")

    with caplog.at_level(logging.INFO, logger="integrations.tests"):
        logger.warning("Shopify refused %s with %s", "Authorization", f"Bearer {SECRET}")

    assert SECRET not in caplog.text
    assert "Shopify refused Authorization with Bearer ***" in caplog.text


def test_a_logged_traceback_does_not_contain_the_secret(caplog):
    caplog.handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("integrations.tests")

    with caplog.at_level(logging.INFO, logger="integrations.tests"):
        try:
            raise RuntimeError(f"401 from Shopify for token={SECRET}")
        except RuntimeError:
            logger.exception("Sync failed")

    assert SECRET not in caplog.text
    assert "RuntimeError: 401 from Shopify for token=***" in caplog.text


def test_the_configured_console_handler_redacts_what_it_writes():
    handler = next(
        h for h in logging.getLogger().handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        logging.getLogger("integrations.tests").warning("Retrying with api key %s", API_KEY)
    finally:
        handler.setStream(previous)

    assert API_KEY not in stream.getvalue()
    assert "Retrying with api key hub_0123456789ab_***" in stream.getvalue()


def test_redact_hides_a_quoted_value_with_spaces_whole():
    text = redact('password: "correct horse battery staple"')
    assert "horse" not in text and "staple" not in text
    assert text == 'password: "***"'
