"""The client tells the two server lines apart: `GET /api/admin/version` on a real 2.20 and a real 3.9.1 server.

(`GET /api/version` is the API's schema version, 0.8.4 on both: useless for choosing an adapter.)
"""
from __future__ import annotations

from reconciler.prefect.api import PrefectClient

EXPECTED = {"2.20": "2.20.", "3.9": "3.9.1"}


def test_the_client_reports_each_servers_prefect_version(server_api_url, server_line):
    with PrefectClient(server_api_url) as client:
        version = client.server_version()
        api_version = client.get("version")
    assert version.startswith(EXPECTED[server_line]), version
    assert version != api_version   # the version a user would look up is not the API schema's
