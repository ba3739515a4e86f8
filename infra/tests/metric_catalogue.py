"""The custom metrics the Rust telemetry crate emits (namespace `Payhook`).

A mirror of `telemetry/src/catalogue.rs` until `payhook` exports that catalogue as JSON (then
the tests should read the export instead): a metric name or dimension set used by a dashboard
or alarm that is not here is drift. Each entry: metric name → the dimension sets it is
emitted with.
"""

NAMESPACE = "Payhook"

CATALOGUE: dict[str, list[frozenset[str]]] = {
    # webhook-validator
    "WebhooksReceived": [frozenset({"service", "provider"})],
    "WebhooksAccepted": [frozenset({"service", "provider"})],
    "WebhooksDuplicate": [frozenset({"service", "provider"})],
    "WebhooksIgnored": [frozenset({"service", "provider"})],
    "TestModeWebhooksIgnored": [frozenset({"service", "provider"})],
    "UnratedPayments": [frozenset({"service", "provider"})],
    "WebhooksQuarantined": [frozenset({"service", "provider"})],
    "WebhooksRejected": [frozenset({"service", "provider", "reason"})],
    "SignatureFailures": [frozenset({"service", "provider"})],
    "ValidationLatency": [frozenset({"service", "provider"})],
    # provider processors (service = the function's logical name, e.g. stripe-processor)
    "RecordsProcessed": [frozenset({"service", "provider"})],
    "RecordsSkipped": [frozenset({"service", "provider"})],
    "RecordsFailed": [frozenset({"service", "provider"})],
    "PublishFailures": [frozenset({"service", "provider"})],
    "MessagesToDlq": [frozenset({"service", "provider"})],
    "QueueLag": [frozenset({"service", "provider"})],
    "EventsPublished": [frozenset({"service", "provider", "event_type"})],
    "PaymentAmount": [frozenset({"service", "provider", "tier"})],
    "PaymentsByTier": [frozenset({"service", "tier"})],
    # event-processor
    "EventsProcessed": [frozenset({"service", "rule"})],
    "DuplicateEventsAbsorbed": [frozenset({"service"})],
    "EndToEndLatency": [frozenset({"service", "provider"})],
    # sweeper
    "StuckWebhooks": [frozenset({"service", "provider", "state"})],
    # every function
    "ColdStart": [frozenset({"service", "function_name"})],
}
