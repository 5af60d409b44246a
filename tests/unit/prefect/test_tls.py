"""Prefect's TLS settings reach httpx: from the environment first, then the active Prefect profile."""
from __future__ import annotations

import ssl

import httpx
import pytest

from reconciler.errors import ReconcileError
from reconciler.prefect import api as api_mod
from reconciler.prefect.api import PrefectClient
from reconciler.prefect.connection import tls_verify

NAMES = ("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "PREFECT_API_SSL_CERT_FILE", "SSL_CERT_FILE", "PREFECT_PROFILE",
         "PREFECT_PROFILES_PATH")


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))


@pytest.fixture
def verify_seen(monkeypatch):
    """The `verify` every httpx transport the client makes is given."""
    seen: list = []

    class Recording(httpx.HTTPTransport):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs.get("verify"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(api_mod.httpx, "HTTPTransport", Recording)
    return seen


def profile(tmp_path, text: str) -> None:
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "home" / "profiles.toml").write_text(text, encoding="utf-8")


def test_skip_verify_from_the_environment_reaches_httpx(monkeypatch, verify_seen):
    monkeypatch.setenv("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "true")
    PrefectClient("https://prefect.test/api").close()
    assert verify_seen == [False]


def test_skip_verify_from_the_active_profile(tmp_path, verify_seen):
    profile(tmp_path, 'active = "dev"\n[profiles.dev]\nPREFECT_API_TLS_INSECURE_SKIP_VERIFY = true\n'
                      '[profiles.default]\n')
    PrefectClient("https://prefect.test/api").close()
    assert verify_seen == [False]


def test_the_environment_wins_over_the_profile(tmp_path, monkeypatch, verify_seen):
    profile(tmp_path, 'active = "dev"\n[profiles.dev]\nPREFECT_API_TLS_INSECURE_SKIP_VERIFY = true\n')
    monkeypatch.setenv("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "false")
    PrefectClient("https://prefect.test/api").close()
    assert isinstance(verify_seen[0], ssl.SSLContext) and verify_seen[0].verify_mode == ssl.CERT_REQUIRED


def test_a_cert_file_is_the_only_ca_trusted(tmp_path, monkeypatch, verify_seen):
    from integration.tls_support import self_signed
    cert, _ = self_signed(tmp_path)
    monkeypatch.setenv("PREFECT_API_SSL_CERT_FILE", str(cert))
    PrefectClient("https://prefect.test/api").close()
    cas = verify_seen[0].get_ca_certs()
    assert [dict(x[0] for x in ca["subject"])["commonName"] for ca in cas] == ["reconcile-test-ca"]


def test_ssl_cert_file_is_the_default_as_in_prefect(tmp_path, monkeypatch):
    from integration.tls_support import self_signed
    cert, _ = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert len(tls_verify().get_ca_certs()) == 1


def test_without_settings_the_usual_cas_are_trusted(verify_seen):
    PrefectClient("https://prefect.test/api").close()
    assert verify_seen[0].verify_mode == ssl.CERT_REQUIRED and len(verify_seen[0].get_ca_certs()) > 10


@pytest.mark.parametrize("where", ["env", "profile"])
def test_a_missing_cert_file_is_one_line(tmp_path, monkeypatch, where):
    missing = tmp_path / "nope.pem"
    if where == "env":
        monkeypatch.setenv("PREFECT_API_SSL_CERT_FILE", str(missing))
    else:
        profile(tmp_path, f'active = "default"\n[profiles.default]\nPREFECT_API_SSL_CERT_FILE = "{missing}"\n')
    with pytest.raises(ReconcileError) as err:
        PrefectClient("https://prefect.test/api")
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"PREFECT_API_SSL_CERT_FILE={missing} (from the ")
    assert "no such file" in text
    assert ("environment" if where == "env" else "Prefect profile") in text


def test_a_file_that_is_no_certificate_is_one_line(tmp_path, monkeypatch):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    monkeypatch.setenv("PREFECT_API_SSL_CERT_FILE", str(junk))
    with pytest.raises(ReconcileError, match=r"^PREFECT_API_SSL_CERT_FILE=.*junk.pem \(from the environment\): "
                                             r"not a PEM file of CA certificates"):
        tls_verify()


def test_a_skip_verify_that_is_no_boolean_is_one_line(monkeypatch):
    monkeypatch.setenv("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "maybe")
    with pytest.raises(ReconcileError, match=r"^PREFECT_API_TLS_INSECURE_SKIP_VERIFY='maybe' \(from the environment\): "
                                             "expected true or false$"):
        tls_verify()


def test_plain_http_loads_no_certificates(monkeypatch: pytest.MonkeyPatch) -> None:
    """An http:// API is never asked for a certificate: its settings are not even read (no CA bundle loaded)."""
    monkeypatch.setenv("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "maybe")
    PrefectClient("http://prefect.test/api").close()
    with pytest.raises(ReconcileError, match="expected true or false"):
        PrefectClient("https://prefect.test/api")
