"""Outbound hooks: signed webhooks to URLs the clients subscribe (Zapier REST hooks among them).

- `events`: what each event's payload holds, one function per kind of object, used alike for
  deliveries and for the samples the API shows (`/api/v1/hooks/samples/<event>`).
- `publish`: changes made into deliveries, after they commit (the receivers are in
  `webhooks.signals`): one delivery per subscription and object, queued on the task cluster.
- `delivery`: one attempt at a delivery (Standard Webhooks signature), its retries, and switching
  off subscriptions whose target is gone or keeps failing.
- `targets`: which URLs may be targets, and the one guarded POST to them.
- `signing`, `shaping`: the signature, and per-subscription payload templates.

See docs/webhooks.md, "Outbound hooks (Zapier)".
"""
