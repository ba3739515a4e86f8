"""Runs the Pulumi program once under mocks and hands the registered resources to the tests.

`pulumi.runtime.set_mocks` is called at import time, before the program is imported, as
Pulumi's unit-testing guide requires. The configuration below is what a user would set with
`pulumi config set` (secrets included); the stage is left unset to exercise its default.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import pulumi
import pytest

INFRA_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = INFRA_DIR.parent
sys.path.insert(0, str(INFRA_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mocks import PayhookMocks, Registered  # noqa: E402

CONFIG = {
    "aws:region": "us-east-1",
    "payhook:stripeSigningSecrets": "whsec_current,whsec_previous",
    "payhook:squareSignatureKey": "square-signature-key",
    "payhook:squareNotificationUrl": "https://hooks.example.com/prod/webhooks/square",
    "payhook:paypalWebhookId": "WH-12345",
    "payhook:alarmEmail": "oncall@example.com",
    "payhook:runbookBaseUrl": "https://git.example.com/acme/payhook/blob/main",
}
SECRET_KEYS = [
    "payhook:stripeSigningSecrets",
    "payhook:squareSignatureKey",
    "payhook:squareNotificationUrl",
    "payhook:paypalWebhookId",
]

MOCKS = PayhookMocks()
pulumi.runtime.set_all_config(CONFIG, SECRET_KEYS)
pulumi.runtime.set_mocks(MOCKS, project="payhook", stack="test", preview=False)

from payhook_infra import program  # noqa: E402  (imported after set_mocks on purpose)


class Deployment:
    """What one run of the program registered, with lookup helpers for assertions."""

    def __init__(self, resources: list[Registered], outputs: dict[str, Any], stack: Any):
        self.resources = resources
        self.outputs = outputs
        self.stack = stack

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str) -> Registered:
        found = [r for r in self.of_type(typ) if r.name == name]
        assert len(found) == 1, f"expected one {typ} named {name}, found {len(found)}"
        return found[0]

    def where(self, typ: str, predicate: Callable[[Registered], bool]) -> list[Registered]:
        return [r for r in self.of_type(typ) if predicate(r)]

    def by_input(self, typ: str, key: str, value: Any) -> Registered:
        found = self.where(typ, lambda r: r.inputs.get(key) == value)
        assert len(found) == 1, f"expected one {typ} with {key}={value!r}, found {len(found)}"
        return found[0]

    def arn_of(self, typ: str, name: str) -> str:
        return self.one(typ, name).outputs["arn"]


def _resolve(outputs: dict[str, Any]) -> pulumi.Output[dict[str, Any]]:
    return pulumi.Output.from_input(outputs)


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    resolved: dict[str, Any] = {}
    holder: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        stack = program.build()
        holder["stack"] = stack
        return _resolve(stack.outputs).apply(lambda values: resolved.update(values))

    run()
    return Deployment(list(MOCKS.resources), resolved, holder["stack"])


def policy_statements(document: str | dict[str, Any]) -> list[dict[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document
    return parsed["Statement"]


def as_list(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
