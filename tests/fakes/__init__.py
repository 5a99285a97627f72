"""Local fakes of third-party platforms, for connector and end-to-end tests."""
