"""API tests reseed the database between requests of one app without publishing, and revoke keys mid-test.

So by default here the API re-reads the data version and looks every key up on every request (both TTLs 0; the
response cache itself stays on). ``test_api_cache.py`` sets the production TTLs where it tests them.
"""
from __future__ import annotations

import os

os.environ.setdefault("PAE_API_CACHE_VERSION_SECONDS", "0")
os.environ.setdefault("PAE_API_KEY_CACHE_SECONDS", "0")
