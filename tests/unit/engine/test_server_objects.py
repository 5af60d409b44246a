"""Block types the server has not registered: found by the live read (one filter, asked only when a block is
missing or would be created), each reported with how to register it, together with every other missing object."""
from __future__ import annotations

import pytest

from reconciler.engine import guards
from reconciler.engine import live as live_mod
from reconciler.errors import ManifestErrors

try:
    from .. import prefect_fake as pf
except ImportError:
    import prefect_fake as pf


def named(slug: str, name: str) -> dict:
    return {"_block_document_id": "4722ac30-ee78-4ec1-a15f-be22c536711f", "_block_document_name": name,
            "_is_anonymous": False, "block_type_slug": slug, "_block_type_slug": slug}


def check(fake: pf.FakePrefect, *docs) -> list[str]:
    live = live_mod.read(fake.client(), pf.desired(*docs))
    with pytest.raises(ManifestErrors) as err:
        guards.server_objects_exist(pf.desired(*docs), live)
    return [str(e) for e in err.value.errors]


def test_an_unregistered_collection_type_says_which_collection_registers_it():
    fake = pf.FakePrefect()
    lines = check(fake, pf.manifest("a", storage=named("s3-bucket", "code")))
    assert len(lines) == 1
    assert lines[0].startswith("deployments/a-deployment.yaml:")
    assert ": storage: block type 's3-bucket' is not registered on the server at http://prefect.test/api; " \
           "register it: pip install prefect-aws && prefect block register -m prefect_aws" in lines[0]


def test_a_missing_block_of_a_registered_type_is_not_found_and_a_missing_pool_comes_with_it():
    fake = pf.FakePrefect()
    lines = check(fake, pf.manifest("a", storage=named("local-file-system", "gone")),
                  pf.manifest("b", work_pool_name="no-such-pool"))
    assert [line.split(": ", 2)[1:] for line in lines] == [
        ["storage", "block local-file-system/gone not found on the server at http://prefect.test/api; create it "
                    "there or correct `_block_document_name`"],
        ["work_pool_name", "work pool 'no-such-pool' not found on the server at http://prefect.test/api; create it "
                           "there or correct the name"],
    ]


def test_an_anonymous_block_of_an_unregistered_core_type():
    fake = pf.FakePrefect()
    infra = {"type": "docker-container", "image": "x", "block_type_slug": "docker-container",
             "_block_type_slug": "docker-container"}
    lines = check(fake, pf.manifest("a", infrastructure=infra))
    assert "block type 'docker-container' is not registered" in lines[0]
    assert "prefect block register -m prefect.infrastructure" in lines[0]


def test_a_named_block_that_exists_needs_no_block_type_lookup():
    fake = pf.FakePrefect()
    fake.add_block_document("local-file-system", name="code", data={"basepath": "/tmp/x"})
    live = live_mod.read(fake.client(), pf.desired(pf.manifest("a", storage=named("local-file-system", "code"))))
    asked = [c.body["block_types"]["slug"]["any_"] for c in fake.calls("POST", "/block_types/filter")]
    assert asked == [["process"]]      # only the anonymous infrastructure apply would create
    assert live.unregistered == frozenset()
