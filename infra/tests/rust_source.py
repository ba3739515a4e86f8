"""What the Rust code reads and calls, read from its source, so the infrastructure tests compare
the Pulumi program with the code instead of with lists copied from it:

- the environment variables each Lambda binary reads: the values of its `*_ENV: &str = "…"`
  constants and the upper-case `SNAKE_CASE` string literals in its crate's `src/` (a literal
  ending in `_{}` is a family, one per provider: `QUEUE_URL_{}`), the variables behind each
  shared reader of `functions/aws/src/env.rs` it calls (`env.status_table()`,
  `env.queue_urls()`: the constants that method's body names), plus the telemetry crate's
  constants, which every binary reads;
- the DynamoDB actions each function's handler needs: the status-store and payment-store
  methods its `payhook-core` module calls (`self.store.<method>(`, `self.payments.<method>(`),
  mapped to the SDK operations those methods make in `functions/aws/src/status_store.rs` and
  `payment_store.rs`, following calls between their own methods;
- the SSM parameter root the validator's secret store reads under, and the SSM actions it calls;
- the `source` the provider processor publishes its events with;
- numeric defaults the program restates (`rust_usize_constant`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from conftest import REPO_ROOT

# The crate of each binary, and the payhook-core module holding its handler.
CRATES = {
    "webhook-validator": "functions/webhook-validator",
    "provider-processor": "functions/provider-processor",
    "event-processor": "functions/event-processor",
    "sweeper": "functions/sweeper",
    "api-key-authorizer": "functions/api-key-authorizer",
}
HANDLER_MODULES = {
    "webhook-validator": "validator",
    "provider-processor": "processor",
    "event-processor": "event_processor",
    "sweeper": "sweeper",
}
TELEMETRY_CRATE = "telemetry"
STATUS_STORE = "functions/aws/src/status_store.rs"
PAYMENT_STORE = "functions/aws/src/payment_store.rs"
#: The handlers' DynamoDB ports (`self.<field>.<method>(`) and the adapter implementing each.
DYNAMODB_PORTS = {"store": STATUS_STORE, "payments": PAYMENT_STORE}
SECRET_STORE = "functions/aws/src/secrets.rs"
#: The environment rules every function crate reads through (`payhook_aws::env::Env`).
ENV_READERS = "functions/aws/src/env.rs"

_ENV_CONST = re.compile(r'_ENV: &str = "([A-Z][A-Z0-9_]*)";')
_SNAKE_LITERAL = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"')
_FAMILY_LITERAL = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_)\{\}"')
_FN = re.compile(r"^\s*(?:pub(?:\([a-z]+\))? )?(?:async )?fn (\w+)", re.MULTILINE)
_SDK_CALL = re.compile(r"\.client\s*\.(\w+)\(\)")
_SELF_CALL = re.compile(r"self\.(\w+)\(")


def _sources(crate_dir: str) -> list[str]:
    return [p.read_text() for p in sorted((REPO_ROOT / crate_dir / "src").glob("**/*.rs"))]


def _read_in(crate_dir: str, providers: list[str], literals: bool) -> set[str]:
    names: set[str] = set()
    for text in _sources(crate_dir):
        names.update(_ENV_CONST.findall(text))
        if literals:
            names.update(_SNAKE_LITERAL.findall(text))
            for prefix in _FAMILY_LITERAL.findall(text):
                names.update(f"{prefix}{p.upper()}" for p in providers)
    return names


_CONST = re.compile(r"pub const ([A-Z][A-Z0-9_]*):[^=]*=(.*?);", re.DOTALL)
_LITERAL = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"')
_METHOD = re.compile(r"\n    pub fn (\w+)\(&self[^{]*\{(.*?)\n    \}", re.DOTALL)


@lru_cache(maxsize=None)
def env_readers() -> dict[str, frozenset[str]]:
    """Each shared reader method of `Env` (`status_table`, `queue_urls`, …) and the variables
    its body reads: the string literals of the constants it names."""
    text = (REPO_ROOT / ENV_READERS).read_text()
    constants = {name: set(_LITERAL.findall(value)) for name, value in _CONST.findall(text)}
    readers: dict[str, frozenset[str]] = {}
    for method, body in _METHOD.findall(text):
        names = set().union(*(v for k, v in constants.items() if re.search(rf"\b{k}\b", body)))
        if names:
            readers[method] = frozenset(names)
    return readers


def env_read_by(binary: str, providers: list[str]) -> set[str]:
    """The variables `binary`'s own crate reads, itself or through the shared readers."""
    names = _read_in(CRATES[binary], providers, literals=True)
    for text in _sources(CRATES[binary]):
        for method, variables in env_readers().items():
            if re.search(rf"\benv\.{method}\(\)", text):
                names |= variables
    return names


def env_read_by_telemetry() -> set[str]:
    """The variables every binary reads through the telemetry crate."""
    return _read_in(TELEMETRY_CRATE, [], literals=False)


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


@lru_cache(maxsize=None)
def _store_methods(adapter: str) -> dict[str, tuple[set[str], set[str]]]:
    """Each function of a store adapter: (the SDK operations it calls, its `self.` calls)."""
    text = (REPO_ROOT / adapter).read_text()
    starts = list(_FN.finditer(text))
    methods: dict[str, tuple[set[str], set[str]]] = {}
    for i, match in enumerate(starts):
        body = text[match.end() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
        sdk, calls = methods.setdefault(match.group(1), (set(), set()))
        sdk.update(_SDK_CALL.findall(body))
        calls.update(_SELF_CALL.findall(body))
    return methods


def dynamodb_actions_of(method: str, adapter: str = STATUS_STORE) -> set[str]:
    """The DynamoDB actions a store method may call, its helpers' included."""
    methods = _store_methods(adapter)
    seen: set[str] = set()
    todo = [method]
    actions: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in methods:
            continue
        seen.add(name)
        sdk, calls = methods[name]
        actions.update(f"dynamodb:{_camel(op)}" for op in sdk)
        todo.extend(calls)
    return actions


def handler_store_calls(binary: str, field: str = "store") -> set[str]:
    """The methods `binary`'s handler calls on its `field` port (`self.store.<method>(`)."""
    module = HANDLER_MODULES[binary]
    # The crate composes and runs the handler (its `Lambda::compose` in `lib.rs`).
    crate = "\n".join(_sources(CRATES[binary]))
    assert f"payhook_core::{module}::" in crate, f"{binary} no longer runs payhook_core::{module}"
    text = (REPO_ROOT / "functions/core/src" / f"{module}.rs").read_text()
    return set(re.findall(rf"self\s*\.\s*{field}\s*\.\s*(\w+)\(", text))


def dynamodb_actions_needed_by(binary: str) -> set[str]:
    """Every DynamoDB action `binary` may call through its handler's DynamoDB ports (the status
    store, and the payment store where the handler has one)."""
    actions: set[str] = set()
    for field, adapter in DYNAMODB_PORTS.items():
        for method in handler_store_calls(binary, field):
            found = dynamodb_actions_of(method, adapter)
            assert found, f"{method} of {adapter} makes no DynamoDB call this parser sees"
            actions |= found
    return actions


def ssm_actions_called_by_the_secret_store() -> set[str]:
    """The SSM actions the validator's secret store calls (`.client.get_parameters()`)."""
    text = (REPO_ROOT / SECRET_STORE).read_text()
    actions = {f"ssm:{_camel(op)}" for op in _SDK_CALL.findall(text)}
    assert actions, f"no SSM call in {SECRET_STORE} this parser sees"
    return actions


def ssm_parameter_root() -> str:
    """The root of every SSM parameter the validator's secret store reads."""
    text = (REPO_ROOT / SECRET_STORE).read_text()
    match = re.search(r'PARAMETER_ROOT: &str = "([^"]+)";', text)
    assert match, f"no PARAMETER_ROOT in {SECRET_STORE}"
    return match.group(1)


def rust_usize_constant(path: str, name: str) -> int:
    """A `const NAME: usize = <product of integers>;` of a Rust file (`1024 * 1024`)."""
    text = (REPO_ROOT / path).read_text()
    match = re.search(rf"const {name}: usize = ([0-9_ *]+);", text)
    assert match, f"no `const {name}: usize = …;` in {path}"
    value = 1
    for factor in match.group(1).split("*"):
        value *= int(factor.strip().replace("_", ""))
    return value


def event_source_prefix() -> str:
    """What the provider processor's events' `source` starts with (`payhook.` + provider)."""
    text = (REPO_ROOT / "functions/core/src/processor.rs").read_text()
    match = re.search(r'source: format!\("([a-z]+\.)\{\}"', text)
    assert match, "no `source: format!(\"….{}\"` in functions/core/src/processor.rs"
    return match.group(1)
