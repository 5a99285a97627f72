"""Django's SQLite backend, told the real limit on query parameters.

Django assumes SQLite's historic limit of 999 parameters per statement and splits every bulk
insert to fit, so one page of a sync becomes many statements. SQLite has allowed 32,766 since
3.32 (2020); with an older library the historic limit stays.
"""

from __future__ import annotations

import sqlite3

from django.db.backends.sqlite3 import base, features


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
