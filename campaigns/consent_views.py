"""The public unsubscribe page, `/u/<token>/`, for the people a tenant's campaigns go to.

GET only shows the page (the company, the masked address and one Unsubscribe button): mail
scanners and link previews fetch links, so a GET must never unsubscribe (RFC 8058). POST
unsubscribes, whether from the button or from a mail client's one-click (a body of
`List-Unsubscribe=One-Click`), and asking twice changes nothing.

The view is exempt from CSRF because mail clients POST the one-click request without a token, and
that is safe: CSRF protection stops a third party from riding on the visitor's cookies, but this
view reads no session, cookie or signed-in user. Its only authority is the signed token in the
address, so a forged cross-site POST can only unsubscribe the address the forger already holds the
link of, which they could POST themselves. A tampered or unknown token is a 404, never a 500.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import consent

TEMPLATE = "campaigns/unsubscribe.html"
ONE_CLICK = "One-Click"


@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    recipient = consent.recipient_for_token(token)
    if recipient is None:
        return _page(request, {"state": "invalid"}, status=404)
    context = {"company": recipient.tenant.name, "address": consent.mask(recipient.address)}
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == ONE_CLICK
        consent.unsubscribe(recipient, detail="one-click" if one_click else "link")
        return _page(request, {**context, "state": "done"})
    return _page(request, {**context, "state": "ask"})


def _page(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    response = render(request, TEMPLATE, context, status=status)
    # The token is in the address: never send it on as a Referer, never index the page.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
