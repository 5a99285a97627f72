"""Campaign templates: merge fields filled in a sandboxed engine that refuses every tag and filter
that could reach past the data it is given, escapes merge fields in HTML and not in text, and
reports a broken template as a problem with its field instead of failing the send."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.template import engines
from django.utils.safestring import mark_safe

from campaigns import templating
from campaigns.templating import MERGE_FIELDS, TemplateProblem, check, render, sample_context
from commerce.models import Customer


@pytest.fixture
def context() -> dict:
    return {
        "first_name": "Ann",
        "last_name": "O'Neil",
        "full_name": "Ann O'Neil",
        "email": "ann@example.com",
        "orders_count": 3,
        "total_spent": "180.00",
        "currency": "USD",
        "last_order": {
            "number": "1042",
            "placed_at": "2026-01-01T03:00:00+00:00",
            "total": "100.00",
            "currency": "USD",
        },
        "discount_code": "SPRING10",
        "unsubscribe_url": "https://hub.example.com/u/abc?x=1&y=2",
        "company": "Alpha Goods",
    }


# --- What templates can do -----------------------------------------------------------------------


def test_an_sms_body_is_filled_with_merge_fields(context):
    body = (
        "Hi {{ first_name|default:'there' }}, {{ discount_code }} takes 10% off at {{ company }} "
        "({{ orders_count }} order{{ orders_count|pluralize }} so far). Stop: {{ unsubscribe_url }}"
    )
    assert render(body, context) == (
        "Hi Ann, SPRING10 takes 10% off at Alpha Goods (3 orders so far). Stop: https://hub.example.com/u/abc?x=1&y=2"
    )
    assert render(body, {**context, "first_name": "", "orders_count": 1}).startswith("Hi there, ")


def test_merge_fields_are_escaped_in_html_and_not_in_text(context):
    context["first_name"] = "<script>alert('x')</script>"
    source = "<p>Dear {{ first_name }} & {{ last_name }}</p>"
    assert render(source, context, html=True) == (
        "<p>Dear &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; & O&#x27;Neil</p>"
    )
    assert render(source, context) == "<p>Dear <script>alert('x')</script> & O'Neil</p>"


def test_data_marked_safe_is_escaped_all_the_same(context):
    context["first_name"] = mark_safe("<b>Ann</b>")
    assert render("{{ first_name }}", context, html=True) == "&lt;b&gt;Ann&lt;/b&gt;"


def test_an_undefined_field_renders_empty_or_its_default(context):
    assert (
        render("[{{ nickname }}][{{ last_order.colour }}][{{ nickname|default:'friend' }}]", context) == "[][][friend]"
    )
    assert render("{% if last_order %}#{{ last_order.number }}{% else %}none{% endif %}", context) == "#1042"
    assert (
        render("{% if last_order %}#{{ last_order.number }}{% else %}none{% endif %}", {"last_order": None}) == "none"
    )


def test_allowed_tags_and_filters_work(context):
    source = (
        "{% with name=first_name|upper %}{{ name }}{% endwith %} "
        "{{ total_spent|floatformat:1 }} {{ full_name|truncatechars:5 }} "
        "{% for key, value in last_order.items %}{% if key == 'number' %}{{ value }}{% endif %}{% endfor %} "
        "{% firstof nickname first_name %}{# a comment #}{% comment %}hidden{% endcomment %} "
        "{% templatetag openvariable %} {% now 'Y' as year %}{{ year|length }}"
    )
    assert render(source, context) == "ANN 180.0 Ann … 1042 Ann {{ 4"


def test_a_time_is_shown_in_the_time_zone_given(context):
    source = '{{ last_order.placed_at|date:"j M Y H:i" }}'
    assert render(source, context) == "1 Jan 2026 03:00"
    assert render(source, context, time_zone="America/New_York") == "31 Dec 2025 22:00"


def test_every_merge_field_of_the_sample_renders():
    sample = sample_context(type("Tenant", (), {"name": "Alpha Goods", "base_currency": "EUR"})())
    for name in MERGE_FIELDS:
        assert render(f"{{{{ {name} }}}}", sample).strip(), name
    assert render("{{ company }} {{ currency }}", sample) == "Alpha Goods EUR"
    assert render('{{ last_order.placed_at|date:"Y" }}', sample).isdigit()


def test_merge_fields_list_what_the_ui_offers():
    assert {
        "first_name",
        "last_name",
        "full_name",
        "email",
        "orders_count",
        "total_spent",
        "currency",
        "last_order",
        "last_order.number",
        "last_order.placed_at",
        "last_order.total",
        "discount_code",
        "unsubscribe_url",
        "company",
    } <= set(MERGE_FIELDS)


def test_the_same_template_escapes_or_not_depending_on_the_call(context):
    context["first_name"] = "<i>"
    assert render("{{ first_name }}", context, html=True) == "&lt;i&gt;"
    assert render("{{ first_name }}", context) == "<i>"


# --- What templates cannot do --------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{% debug %}",
        "{% load static %}",
        "{% load i18n %}{% trans 'x' %}",
        '{% include "admin/base.html" %}',
        '{% extends "admin/base.html" %}',
        '{% ssi "/etc/passwd" %}',
        "{% csrf_token %}",
        '{% url "admin:index" %}',
        '{% static "app.css" %}',
        "{% autoescape off %}{{ first_name }}{% endautoescape %}",
        "{% block content %}{% endblock %}",
        "{% querystring %}",
        "{% lorem 9999 w %}",
        "{% filter safe %}{{ first_name }}{% endfilter %}",
        "{% cycle 'a' 'b' %}",
        "{% widthratio 1 1 999999999 %}",
    ],
)
def test_tags_outside_the_allow_list_are_refused_and_never_run(source, context):
    with pytest.raises(TemplateProblem) as caught:
        check(source, field="html")
    assert caught.value.field == "html"
    assert "not allowed" in caught.value.message
    assert "Did you forget to register" not in caught.value.message
    with pytest.raises(TemplateProblem):
        render(source, context, html=True)


@pytest.mark.parametrize(
    "source",
    [
        "{{ first_name|safe }}",
        "{{ last_order|pprint }}",
        "{{ first_name|ljust:'999999999' }}",
        "{{ first_name|stringformat:'999999999s' }}",
        "{{ first_name|center:'999999999' }}",
        "{{ first_name|urlize }}",
        "{{ last_order|dictsort:'number' }}",
        "{{ first_name|json_script:'id' }}",
    ],
)
def test_filters_outside_the_allow_list_are_refused(source, context):
    with pytest.raises(TemplateProblem) as caught:
        check(source)
    assert "is not allowed" in caught.value.message
    with pytest.raises(TemplateProblem):
        render(source, context)


def test_settings_are_not_in_reach(context):
    output = render("[{{ settings.SECRET_KEY }}][{{ SECRET_KEY }}][{{ settings }}][{{ request.user }}]", context)
    assert output == "[][][][]"
    assert settings.SECRET_KEY not in output


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ first_name.__class__.__mro__ }}",
        "{{ _private }}",
        "{{ last_order._meta }}",
        "{{ first_name|default:last_order.__class__ }}",
        "{% if first_name.__class__ %}x{% endif %}",
        "{% for x in last_order.__dict__ %}{% endfor %}",
    ],
)
def test_names_starting_with_an_underscore_are_refused(source, context):
    with pytest.raises(TemplateProblem):
        check(source)
    with pytest.raises(TemplateProblem):
        render(source, context)


def test_a_dicts_methods_are_out_of_reach(context):
    assert render("[{{ last_order.clear }}{{ last_order.pop }}{{ last_order.copy }}]", context) == "[]"
    assert render("{{ last_order.number }}", context) == "1042"
    assert context["last_order"]["number"] == "1042"


def test_underscore_keys_of_the_data_are_dropped():
    assert templating._plain({"_secret": 1, "a": {"_b": 2, "c": 3}}, "") == {"a": {"c": 3}}


@pytest.mark.parametrize(
    "value",
    [
        Customer(email="ann@example.com"),
        settings,
        object(),
        {"nested": Customer()},
        [lambda: 1],
    ],
)
def test_only_plain_data_is_given_to_a_template(value):
    with pytest.raises(TypeError, match="plain data"):
        render("{{ x }}", {"x": value})


def test_deeply_nested_loops_are_refused():
    source = "{% for a in x %}{% for b in a %}{% for c in b %}{{ c }}{% endfor %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateProblem, match="at most 2"):
        check(source)
    check("{% for a in x %}{% for b in a %}{{ b }}{% endfor %}{% endfor %}")


def test_a_huge_number_format_renders_nothing_instead_of_a_huge_string(context):
    started = time.monotonic()
    assert render('{{ total_spent|floatformat:"9999999" }}', context) == ""
    assert time.monotonic() - started < 1
    assert render("{{ total_spent|floatformat:2 }}", context) == "180.00"


def test_a_template_too_long_is_refused():
    with pytest.raises(TemplateProblem, match="at most"):
        check("x" * (templating.MAX_SOURCE + 1))


# --- Problems ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{% if %}x{% endif %}", "end of expression"),
        ("{% if first_name %}x", "Unclosed tag"),
        ("{% for a in b %}{% endif %}", "{% endif %} is out of place here; expected 'empty' or 'endfor'"),
        ("{% endif %}", "{% endif %} is out of place"),
        ("{{ first_name|truncatechars }}", "requires 2 arguments"),
        ("{{ }}", "Empty variable tag"),
    ],
)
def test_a_syntax_error_is_a_problem_with_its_field(source, words):
    with pytest.raises(TemplateProblem) as caught:
        check(source, field="subject")
    assert caught.value.field == "subject"
    assert words in caught.value.message


def test_a_template_failing_while_rendering_is_a_problem_not_an_error(context):
    with pytest.raises(TemplateProblem) as caught:
        render("{% for x in orders_count %}{{ x }}{% endfor %}", context, html=True)
    assert caught.value.field == "html"
    assert "failed while filling it in" in caught.value.message


def test_a_good_template_passes_the_check():
    check("Hi {{ first_name|default:'there' }} {% if orders_count > 1 %}again{% endif %}")
    check("")


def test_the_projects_own_engine_is_untouched():
    django_engine = engines["django"]
    assert django_engine.from_string("{% load static %}{% static 'a.css' %}").render({}) == "/static/a.css"
    assert templating.ENGINE is not django_engine.engine
    assert templating.ENGINE.template_libraries == {}
