"""Prints each function's environment as the Pulumi program renders it (under Pulumi's mocks), for
the harness that runs the real Lambda binaries (`tests/e2e/lambda_binaries.rs`):

    .venv/bin/python infra/tests/render_env.py --stage S --table T --bus B

Prints JSON `{function: {variable: value}}` keyed by the function's logical name
(`webhook-validator`, `stripe-processor`, …). Values that name another resource (queue URLs)
are the mocks' ARNs and URLs; the harness resolves them to the stage it bootstrapped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def rendered_environments(stage: str, table: str, bus: str) -> dict[str, dict[str, str]]:
    import conftest  # noqa: PLC0415  (sets the mocks and imports the program)

    run = conftest.run_program(stage=stage, tableName=table, eventBusName=bus)
    return {
        r.name: dict(r.inputs.get("environment", {}).get("variables", {}))
        for r in run.of_type("aws:lambda/function:Function")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--bus", required=True)
    args = parser.parse_args()
    print(json.dumps(rendered_environments(args.stage, args.table, args.bus)))


if __name__ == "__main__":
    main()
