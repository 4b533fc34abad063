"""The OpenAPI document of this API, kept as YAML beside the code and served as JSON.

Tests check that it describes every route the API registers (and nothing else), that it is a
valid OpenAPI 3.1 document, and that real responses match its schemas.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from crm.api import api
from crm.api.auth import api_view

SPEC_FILE = Path(__file__).with_name("openapi.yaml")


@functools.cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))


@api.get("/openapi.json")
@api_view()
def openapi_document(*, session: Session):  # type: ignore[no-untyped-def]
    return spec()
