"""The REST API presigns downloads of cited documents (GET .../documents/{doc}/source): a presigned GET acts with
the signer's permissions, so the rest_api role must hold s3:GetObject on the uploads bucket's objects."""

from __future__ import annotations

import pytest

from tests.cdk.cdk_synth import Synth, actions, logical_id, policy_statements

pytestmark = pytest.mark.cdk


def test_the_rest_api_can_read_the_uploads_it_links_to(default_synth: Synth) -> None:
    role = logical_id(default_synth, default_synth.stack.functions.roles["rest_api"])
    uploads = logical_id(default_synth, default_synth.stack.storage.uploads)
    readable = [
        s
        for s in policy_statements(default_synth, role)
        if "s3:GetObject" in actions(s) and uploads in str(s["Resource"]) and "/*" in str(s["Resource"])
    ]
    assert readable, "the rest_api role cannot read uploaded documents: their presigned downloads would be refused"
