"""Every answer a test receives from the gateway is checked against the 200 schema the OpenAPI document declares
for its operation (jsonschema, Draft 2020-12 as OpenAPI 3.1 uses, over the document's own components), so the
document cannot drift from what the services return."""

import functools

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from services.gateway.views import PREFIX, document

DOCUMENT_URI = "urn:jmdi:openapi"


def declared_answer(spec: dict, operation: str) -> dict:
    service, name = operation.split(".")
    post = spec["paths"][f"{PREFIX}/{service}/{name}"]["post"]
    return post["responses"]["200"]["content"]["application/json"]["schema"]


def validator_for(spec: dict, operation: str) -> Draft202012Validator:
    """The answer's schema, its `#/components/...` references resolved in `spec`."""
    registry = Registry().with_resource(DOCUMENT_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
    declared_answer(spec, operation)  # KeyError for an operation the document does not have
    path = _pointer(f"{PREFIX}/{operation.replace('.', '/')}")
    schema = {"$ref": f"{DOCUMENT_URI}#/paths/{path}/post/responses/200/content/application~1json/schema"}
    return Draft202012Validator(schema, registry=registry)


def _pointer(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


@functools.cache
def _validator(operation: str) -> Draft202012Validator:
    return validator_for(document(), operation)


def check_answer(operation: str, answer) -> None:
    """AssertionError naming each place where `answer` is not what the document declares."""
    errors = sorted(_validator(operation).iter_errors(answer), key=lambda e: list(e.absolute_path))
    assert not errors, f"{operation} answered outside its declared schema:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}" for e in errors[:20]
    )


def checking(call):
    """`Gateway.call` (jmdi.transport) that checks each result it returns, for tests of the CLI in-process."""

    @functools.wraps(call)
    def checked(self, service: str, operation: str, payload=None, token=None):
        result = call(self, service, operation, payload, token)
        check_answer(f"{service}.{operation}", result)
        return result

    return checked
