"""The CLI's commands come from the operations' own input schemas (through the gateway's OpenAPI document): every
argument an operation declares is an option, required where the schema requires it, and an operation nobody
declared for the CLI still gets its command."""

import json

import pytest
from typer.testing import CliRunner

from jmdi import cli, operations, table
from services.gateway.catalogue import operations as catalogue


def test_every_option_of_a_declared_command_fills_a_field_of_its_operation():
    infos = operations.operations()
    for cmd in table.COMMANDS:
        info = infos[cmd.operation]
        for p in cmd.params:
            if p.kind == "file" and p.field is None:
                continue  # the whole payload from a file
            assert info.field(p.target), f"jmdi {cmd.path} --{p.name}: {cmd.operation} has no field {p.target}"


def test_every_argument_of_every_operation_is_an_option_of_its_command():
    by_operation = {cmd.operation: cmd for cmd in table.commands()}
    for op in catalogue():
        if not op.staff_roles or table._special(op.key):
            continue
        cmd = by_operation[op.key]
        if any(p.kind == "file" and p.field is None for p in cmd.params):
            continue
        targets = {p.target: p for p in cmd.params}
        for name, field in op.schema.fields.items() if op.schema else ():
            assert name in targets, f"jmdi {cmd.path} has no option for {op.key}'s {name}"
            assert targets[name].required == field.required, (cmd.path, name)


DOCUMENT = {
    "paths": {
        "/api/v1/grants/suspend_grant": {
            "post": {
                "operationId": "grants.suspend_grant",
                "summary": "Suspend a grant",
                "x-roles": ["programme_manager"],
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Suspend"}}}},
            }
        }
    },
    "components": {
        "schemas": {
            "Suspend": {
                "type": "object",
                "required": ["grant_id", "reason"],
                "properties": {
                    "grant_id": {"type": "string"},
                    "reason": {"type": "string", "description": "why"},
                    "months": {"type": ["integer", "null"]},
                    "notify": {"type": "boolean"},
                    "headings": {"type": "array", "items": {"type": "string", "enum": ["travel", "equipment"]}},
                    "budget": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
                    "contacts": {"type": "array", "items": {"$ref": "#/components/schemas/Contact"}},
                },
            }
        }
    },
}


def test_a_new_operation_becomes_a_command_with_an_option_per_argument(monkeypatch):
    infos = operations.describe(DOCUMENT)
    monkeypatch.setattr(table, "operations", lambda: infos)
    table.commands.cache_clear()
    try:
        (cmd,) = [c for c in table.commands() if c.operation == "grants.suspend_grant"]
    finally:
        table.commands.cache_clear()
    assert cmd.path == "grants suspend-grant" and cmd.help == "Suspend a grant"
    params = {p.name: (p.target, p.kind, p.required) for p in cmd.params}
    assert params == {
        "grant-id": ("grant_id", "str", True),
        "reason": ("reason", "str", True),
        "months": ("months", "int", False),
        "notify": ("notify", "bool", False),
        "headings": ("headings", "list", False),
        "budget": ("budget", "pairs", False),
        "contacts": ("contacts", "json", False),
    }
    assert "travel, equipment" in next(p.help for p in cmd.params if p.name == "headings")


def test_options_named_for_people_still_fill_the_schema_fields(monkeypatch):
    """`jmdi calls create` keeps its options (`--window NAME=EUR`, `--programme`), the rest come from the schema."""
    sent = []
    monkeypatch.setattr(cli, "rpc", lambda service, op, payload=None: sent.append((op, payload)) or {})
    result = CliRunner().invoke(
        cli.app,
        [
            "calls",
            "create",
            "C-1",
            "--programme",
            "JMDI",
            "--title",
            "T",
            "--deadline",
            "2030-01-01T00:00:00+00:00",
            "--window",
            "remittances=100.00",
            "--applicant-type",
            "ngo",
            "--consortium",
            '{"min_partners": 2}',
        ],
    )
    assert result.exit_code == 0, result.output
    assert sent == [
        (
            "create_call",
            {
                "call_id": "C-1",
                "programme_id": "JMDI",
                "title": "T",
                "deadline": "2030-01-01T00:00:00+00:00",
                "windows": [{"window": "remittances", "allocation_eur": "100.00"}],
                "eligible_applicant_types": ["ngo"],
                "consortium": {"min_partners": 2},
            },
        )
    ]


def test_the_description_is_cached_and_made_again_when_a_service_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("JMDI_CACHE_DIR", str(tmp_path))
    made = []
    monkeypatch.setattr(operations, "_generate", lambda: made.append(1) or DOCUMENT)
    stamp = iter(["a", "a", "b"])
    monkeypatch.setattr(operations, "_source_stamp", lambda: next(stamp))
    operations.operations.cache_clear()
    try:
        first = operations.operations()
        operations.operations.cache_clear()
        assert operations.operations() == first and made == [1]  # read from the cache
        operations.operations.cache_clear()
        operations.operations()
        assert made == [1, 1]  # a service changed: described again
        (cached,) = tmp_path.glob("operations-*.json")  # and only the newest kept
        assert "grants.suspend_grant" in json.loads(cached.read_text())
    finally:
        operations.operations.cache_clear()


@pytest.mark.parametrize("value, expected", [("plain text", "plain text"), ('["a", "b"]', ["a", "b"]), ("12", 12)])
def test_an_argument_of_any_type_is_json_when_it_reads_as_json(value, expected):
    from jmdi.payload import convert

    assert convert("any", value, "name") == expected
