"""payhook's Pulumi program, one ComponentResource per concern.

- `settings`: stack configuration and the constants shared with the Rust functions
- `definitions`, `placeholders`: reading and checking rules/, alarms/, dashboards/
- `policies`: the IAM documents, one per function, and the queue and bus policies
- `components`: the `Component` base class (children parented and aliased) and the default tags
- `storage`, `queues`, `functions`, `events`, `api`, `secrets`, `monitoring`: the components
- `program`: wires them together in data-flow order and exports the outputs
"""
