"""Pulumi entry point: `pulumi up` from this directory deploys payhook (see README.md)."""

from payhook_infra import program

program.build()
