"""The tenant's packaged request-body schemas are exactly what the vendored OAS gives (plus the errata)."""

from __future__ import annotations

import json

from auth0_migrate.tenant import bodies
from tests.support import vendor_request_bodies


def test_packaged_schemas_match_the_vendored_oas() -> None:
    assert vendor_request_bodies.OUT.read_text(encoding="utf-8") == vendor_request_bodies.render(), (
        "run: python -m tests.support.vendor_request_bodies")


def test_every_erratum_names_a_served_operation_and_says_why() -> None:
    data = json.loads(vendor_request_bodies.OUT.read_text(encoding="utf-8"))
    for operation, why in data["errata"].items():
        assert bodies.schema_of(operation) is not None, operation
        assert len(why) > 20, operation
