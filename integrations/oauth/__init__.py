"""Connecting a platform account by OAuth: the provider registry, one module per platform that
differs, and the two views of the flow (start and callback). See docs/oauth.md."""
