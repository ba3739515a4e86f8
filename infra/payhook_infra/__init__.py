"""payhook's Pulumi program, split by area.

- `settings`: stack configuration and the constants shared with the Rust functions
- `definitions`, `placeholders`: reading and checking rules/, alarms/, dashboards/
- `policies`: the IAM documents, one per function
- `storage`, `queues`, `secrets`, `functions`, `api`, `events`, `monitoring`: resources
- `program`: wires them together in data-flow order and exports the outputs
"""
