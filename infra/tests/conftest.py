"""Runs the Pulumi program once under mocks and hands the registered resources to the tests.

`pulumi.runtime.set_mocks` is called at import time, before the program is imported, as
Pulumi's unit-testing guide requires. The configuration below is what a user would set with
`pulumi config set` (secrets included); the stage is left unset to exercise its default.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import pulumi
import pytest

INFRA_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = INFRA_DIR.parent
sys.path.insert(0, str(INFRA_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mocks import PayhookMocks, Registered  # noqa: E402
from payhook_infra.settings import BINARIES  # noqa: E402  (plain constants, no resources)

#: Stand-ins for cargo lambda's zips: `pulumi up` refuses to run without them.
PACKAGE_DIR = Path(tempfile.mkdtemp(prefix="payhook-packages-"))
for _binary in BINARIES:
    (PACKAGE_DIR / _binary).mkdir()
    (PACKAGE_DIR / _binary / "bootstrap.zip").write_bytes(b"PK\x05\x06" + bytes(18))

CONFIG = {
    "aws:region": "us-east-1",
    "payhook:stripeSigningSecrets": "whsec_current,whsec_previous",
    "payhook:squareSignatureKey": "square-signature-key",
    "payhook:squareNotificationUrl": "https://hooks.example.com/prod/webhooks/square",
    "payhook:paypalWebhookId": "WH-12345",
    "payhook:alarmEmail": "oncall@example.com",
    "payhook:runbookBaseUrl": "https://git.example.com/acme/payhook/blob/main",
    "payhook:packageDir": str(PACKAGE_DIR),
    "payhook:redrivePrincipalArns": json.dumps(
        ["arn:aws:iam::123456789012:role/payhook-oncall"]
    ),
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


@dataclasses.dataclass
class Registration:
    """A resource as the program constructed it: the object and the options it was given."""

    resource: pulumi.Resource
    typ: str
    name: str
    opts: pulumi.ResourceOptions


class Recorder:
    """Records every resource constructed while it is active (a stack transformation that
    changes nothing). The root stack resource, and so its transformations, outlives one run
    under the mocks: `stop` ends the recording when the run is over."""

    def __init__(self) -> None:
        self.registrations: list[Registration] = []
        self.active = True
        pulumi.runtime.register_stack_transformation(self._record)

    def _record(self, args: pulumi.ResourceTransformationArgs) -> None:
        if self.active:
            self.registrations.append(Registration(args.resource, args.type_, args.name, args.opts))
        return None

    def stop(self) -> list[Registration]:
        self.active = False
        return self.registrations


class Deployment:
    """What one run of the program registered, with lookup helpers for assertions."""

    def __init__(
        self,
        resources: list[Registered],
        outputs: dict[str, Any],
        stack: Any,
        secret_outputs: set[str],
        registrations: list[Registration] | None = None,
    ):
        self.resources = resources
        self.outputs = outputs
        self.stack = stack
        #: The stack outputs Pulumi stores encrypted.
        self.secret_outputs = secret_outputs
        #: Every resource with the options the program gave it.
        self.registrations = registrations or []

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
        holder["recorder"] = Recorder()
        stack = program.build()
        holder["stack"] = stack

        async def secret_outputs() -> set[str]:
            return {
                k for k, v in stack.outputs.items() if await pulumi.Output.from_input(v).is_secret()
            }

        secret = pulumi.Output.from_input(asyncio.ensure_future(secret_outputs()))
        return pulumi.Output.all(_resolve(stack.outputs), secret).apply(
            lambda values: (resolved.update(values[0]), holder.update(secret=values[1]))
        )

    run()
    return Deployment(
        list(MOCKS.resources), resolved, holder["stack"], holder["secret"], holder["recorder"].stop()
    )


def run_program(*, preview: bool = False, **overrides: str) -> Deployment:
    """The program run once more under fresh mocks with extra `payhook:` config (the session's
    `deployment` is left as it was); `preview` runs it as `pulumi preview` would."""
    mocks = PayhookMocks()
    values = {**CONFIG, **{f"payhook:{k}": v for k, v in overrides.items()}}
    pulumi.runtime.set_all_config(values, SECRET_KEYS)
    pulumi.runtime.set_mocks(mocks, project="payhook", stack="test", preview=preview)
    resolved: dict[str, Any] = {}
    holder: dict[str, Any] = {}
    try:

        @pulumi.runtime.test
        def run() -> pulumi.Output[Any]:
            holder["recorder"] = Recorder()
            stack = program.build()
            holder["stack"] = stack
            return _resolve(stack.outputs).apply(lambda values: resolved.update(values))

        run()
    finally:
        if "recorder" in holder:
            holder["recorder"].stop()
        pulumi.runtime.set_all_config(CONFIG, SECRET_KEYS)
        pulumi.runtime.set_mocks(MOCKS, project="payhook", stack="test", preview=False)
    return Deployment(
        list(mocks.resources), resolved, holder["stack"], set(), holder["recorder"].registrations
    )


def policy_statements(document: str | dict[str, Any]) -> list[dict[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document
    return parsed["Statement"]


def as_list(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
