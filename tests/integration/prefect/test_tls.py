"""Prefect's TLS settings against a real HTTPS server with a self-signed certificate."""
from __future__ import annotations

import pytest

from integration.tls_support import https_api
from reconciler.errors import Unreachable
from reconciler.prefect.api import PrefectClient


@pytest.fixture
def api(tmp_path, monkeypatch):
    for name in ("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "PREFECT_API_SSL_CERT_FILE", "SSL_CERT_FILE",
                 "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    with https_api(tmp_path) as served:
        yield served


def version(url: str) -> str:
    with PrefectClient(url) as client:
        client.retry.attempts = 1   # a refused certificate is not retried into a slow test
        return client.server_version()


def test_a_self_signed_certificate_is_refused_by_default(api):
    url, _ = api
    with pytest.raises(Unreachable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        version(url)


def test_the_ca_file_setting_makes_it_trusted(api, monkeypatch):
    url, cert = api
    monkeypatch.setenv("PREFECT_API_SSL_CERT_FILE", str(cert))
    assert version(url) == "2.20.27"


def test_skip_verify_from_the_profile_accepts_it(api, tmp_path):
    url, _ = api
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "profiles.toml").write_text(
        'active = "selfsigned"\n[profiles.selfsigned]\nPREFECT_API_TLS_INSECURE_SKIP_VERIFY = "true"\n')
    assert version(url) == "2.20.27"
