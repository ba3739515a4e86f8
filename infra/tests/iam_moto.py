"""Loads each function's IAM policy, as the Pulumi program renders it, into a moto server as the
only policy of a user of its own, and turns IAM enforcement on. The Rust test
`infra/iam/tests/iam_in_moto/` then runs each function's real code path in-process with that
user's credentials: a missing action fails it.

    .venv/bin/python infra/tests/iam_moto.py --endpoint URL --stage S --table T --bus B \\
        [--without FUNCTION:ACTION ...] [--without-each FUNCTION ...]

Prints JSON: `{"users": {name: {"access_key_id", "secret_access_key", "policy"}}}` with one user
per function (`webhook-validator`, `stripe-processor`, …), one per `--without` (named
`FUNCTION-without-ACTION`, the same policy less that action), one per action of each
`--without-each` function (named the same way), and `observer` (everything, for the test's own
setup and checks). Then enforcement is on: moto checks every later request.

moto evaluates the `Resource` of a statement only for SQS (it resolves the queue's ARN); for
DynamoDB, SSM and EventBridge it matches statements against `*`, and it has no values for
their condition keys (`events:source`, `kms:ViaService`), so those statements' resources are
widened to `*` and their conditions dropped here. Their exact ARNs and conditions are asserted
by `test_iam.py` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Services whose statements moto can check against the real resource ARN.
RESOURCE_CHECKED = ("sqs:",)


def rendered_policies(stage: str, table: str, bus: str) -> dict[str, dict[str, Any]]:
    """Each function's policy document from a run of the program under Pulumi's mocks (account
    123456789012 and region us-east-1, moto's defaults)."""
    import conftest  # noqa: PLC0415  (sets the mocks and imports the program)

    run = conftest.run_program(stage=stage, tableName=table, eventBusName=bus)
    return {
        r.name.removesuffix("-policy"): json.loads(r.inputs["policy"])
        for r in run.of_type("aws:iam/rolePolicy:RolePolicy")
    }


def for_moto(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every statement moto cannot resolve widened to `*` (see above)."""
    statements = []
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if not all(a.startswith(RESOURCE_CHECKED) for a in actions):
            statement = {k: v for k, v in statement.items() if k != "Condition"}
            statement["Resource"] = "*"
        statements.append(statement)
    return {**document, "Statement": statements}


def actions_of(document: dict[str, Any]) -> list[str]:
    """Every action the document grants, in order of appearance."""
    actions: list[str] = []
    for statement in document["Statement"]:
        for action in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
            if action not in actions:
                actions.append(action)
    return actions


def without(document: dict[str, Any], action: str) -> dict[str, Any]:
    """The document less `action` (a statement left with no action is dropped)."""
    statements = []
    for statement in document["Statement"]:
        actions = [a for a in statement["Action"] if a != action]
        if actions:
            statements.append({**statement, "Action": actions})
    return {**document, "Statement": statements}


def create_user(iam: Any, name: str, document: dict[str, Any]) -> dict[str, Any]:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "policy": document,
    }


def enforce(endpoint: str) -> None:
    """From now on moto authenticates and authorises every request."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        # Not form-encoded: moto reads the raw body.
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--bus", required=True)
    parser.add_argument("--without", action="append", default=[], metavar="FUNCTION:ACTION")
    parser.add_argument("--without-each", action="append", default=[], metavar="FUNCTION")
    args = parser.parse_args()

    import boto3  # noqa: PLC0415  (moto's dependency, in the same venv)

    policies = rendered_policies(args.stage, args.table, args.bus)
    iam = boto3.client(
        "iam",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    prefix = f"payhook-{args.stage}"
    users = {
        function: create_user(iam, f"{prefix}-{function}", for_moto(document))
        for function, document in policies.items()
    }
    removals = [tuple(item.split(":", 1)) for item in args.without]
    removals += [(f, a) for f in args.without_each for a in actions_of(policies[f])]
    for function, action in dict.fromkeys(removals):
        reduced = for_moto(without(policies[function], action))
        users[f"{function}-without-{action}"] = create_user(
            iam, f"{prefix}-{function}-without-{action.replace(':', '-')}", reduced
        )
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    users["observer"] = create_user(iam, f"{prefix}-observer", everything)
    enforce(args.endpoint)
    json.dump({"users": users}, sys.stdout)


if __name__ == "__main__":
    main()
