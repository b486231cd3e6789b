"""The JSON Schemas of ``plasm.schemas`` (package data), loaded once, with validators.

``jsonschema`` is imported on first use, not at import time: it loads ``threading``, and
importing ``plasm.protocol`` must stay free of it (``tests/test_layers.py``).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

SCHEMA_NAMES = ("manifest", "receipt", "job-result")


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema ``schemas/<name>.schema.json``."""
    if name not in SCHEMA_NAMES:
        raise ValueError(f"no schema named {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    text = resources.files("plasm.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def validator(name: str) -> Any:
    """A ``jsonschema`` 2020-12 validator for schema ``name``; ``$ref`` between our schemas
    resolves offline through a registry of all of them."""
    import jsonschema
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (load_schema(each)["$id"], Resource.from_contents(load_schema(each)))
        for each in SCHEMA_NAMES
    )
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)
