//! The Logger: Powertools keys, levels from the environment, sampling, correlation ids.

use std::collections::HashMap;

use payhook_telemetry::lambda::CorrelationId;
use payhook_telemetry::{FunctionKind, InvocationContext, LoggerConfig, correlation_scope};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use tracing::Instrument;

use crate::support::{Harness, TestError, fresh_trace_header};

const POWERTOOLS_KEYS: [&str; 12] = [
    "level",
    "location",
    "message",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "correlation_id",
];

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[tokio::test]
async fn log_lines_inside_an_invocation_carry_every_powertools_key() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    let (header, trace_id, _) = fresh_trace_header(true);
    let inv = f.start_with(InvocationContext {
        request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        trace_header: Some(&header),
        function_arn: Some("arn:aws:lambda:us-east-1:123456789012:function:webhook-validator"),
        function_name: Some("payhook-dev-webhook-validator"),
        memory_size_mb: Some(1024),
    });
    let handle = inv.handle();
    handle.set_correlation_id("apigw-request-1");
    inv.run(async {
        tracing::info!(provider = "stripe", attempt = 2_u64, "webhook verified");
        Ok::<_, TestError>(())
    })
    .await
    .expect("handler succeeds");

    let lines = h.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    for key in POWERTOOLS_KEYS {
        assert!(line.get(key).is_some(), "missing {key}: {line}");
    }
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["message"], "webhook verified");
    assert_eq!(line["service"], "webhook-validator");
    assert_eq!(line["cold_start"], true);
    assert_eq!(line["function_name"], "payhook-dev-webhook-validator");
    assert_eq!(line["function_memory_size"], 1024);
    assert_eq!(
        line["function_arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:webhook-validator"
    );
    assert_eq!(
        line["function_request_id"],
        "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    );
    assert_eq!(line["xray_trace_id"], trace_id.as_str());
    assert_eq!(line["correlation_id"], "apigw-request-1");
    assert_eq!(line["provider"], "stripe");
    assert_eq!(line["attempt"], 2);
    let location = line["location"].as_str().expect("location");
    assert!(location.starts_with("it::logs:"), "{location}");
}

#[tokio::test]
async fn timestamps_are_rfc3339_utc_with_milliseconds() {
    let h = Harness::new();
    tracing::warn!("outside any invocation");
    let line = &h.log_lines()[0];
    let ts = line["timestamp"].as_str().expect("timestamp");
    let parsed = time::OffsetDateTime::parse(ts, &Rfc3339).expect("RFC 3339");
    assert_eq!(parsed.offset(), time::UtcOffset::UTC);
    assert!(ts.ends_with('Z'), "{ts}");
    let fraction = ts.rsplit('.').next().expect("fraction");
    assert_eq!(
        fraction.len(),
        4,
        "three digits of milliseconds then Z: {ts}"
    );
    let age = time::OffsetDateTime::now_utc() - parsed;
    assert!(age.whole_seconds().abs() < 60, "{ts}");
    assert_eq!(line["level"], "WARN");
}

#[tokio::test]
async fn cold_start_is_true_only_for_the_first_invocation() {
    let h = Harness::new();
    let f = h.function(FunctionKind::EventProcessor);
    for id in ["r1", "r2"] {
        f.start(id, None)
            .run(async {
                tracing::info!("handled");
                Ok::<_, TestError>(())
            })
            .await
            .expect("ok");
    }
    let cold: Vec<Value> = h
        .log_lines()
        .iter()
        .map(|l| l["cold_start"].clone())
        .collect();
    assert_eq!(cold, vec![json!(true), json!(false)]);
}

#[tokio::test]
async fn span_fields_inside_the_invocation_become_keys_and_event_fields_win() {
    let h = Harness::new();
    let f = h.function(FunctionKind::ProviderProcessor);
    f.start("r1", None)
        .run(async {
            async {
                tracing::info!(stage = "publish", "publishing");
            }
            .instrument(tracing::info_span!(
                "enrich",
                stage = "enrich",
                payment_id = "pi_123"
            ))
            .await;
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    let line = &h.log_lines()[0];
    assert_eq!(line["payment_id"], "pi_123");
    assert_eq!(line["stage"], "publish");
}

#[tokio::test]
async fn failed_invocations_log_error_and_error_code() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    let result = f
        .start("r1", None)
        .run(async {
            Err::<(), _>(TestError {
                code: "dynamodb_unavailable",
                retryable: true,
                message: "status table unavailable".into(),
            })
        })
        .await;
    assert!(result.is_err());
    let lines = h.log_lines();
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("an error line");
    assert_eq!(error["error"], "status table unavailable");
    assert_eq!(error["error_code"], "dynamodb_unavailable");
    assert_eq!(error["retryable"], true);
    assert_eq!(error["function_request_id"], "r1");
}

#[test]
fn level_comes_from_powertools_then_lambda_then_rust_log() {
    let cfg = LoggerConfig::from_lookup(lookup(&[
        ("POWERTOOLS_LOG_LEVEL", "WARNING"),
        ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ("RUST_LOG", "trace"),
    ]));
    assert_eq!(cfg.directives(), "warn");
    let cfg = LoggerConfig::from_lookup(lookup(&[
        ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ("RUST_LOG", "trace"),
    ]));
    assert_eq!(cfg.directives(), "debug");
    let cfg = LoggerConfig::from_lookup(lookup(&[("RUST_LOG", "info,payhook_core=debug")]));
    assert_eq!(cfg.directives(), "info,payhook_core=debug");
    let cfg = LoggerConfig::from_lookup(lookup(&[]));
    assert_eq!(cfg.directives(), "info");
    let cfg = LoggerConfig::from_lookup(lookup(&[("POWERTOOLS_LOG_LEVEL", "CRITICAL")]));
    assert_eq!(cfg.directives(), "error");
}

#[test]
fn unusable_settings_are_reported_and_ignored() {
    let cfg = LoggerConfig::from_lookup(lookup(&[
        ("POWERTOOLS_LOG_LEVEL", "LOUD"),
        ("AWS_LAMBDA_LOG_LEVEL", "ERROR"),
        ("POWERTOOLS_LOGGER_SAMPLE_RATE", "2.5"),
    ]));
    assert_eq!(cfg.directives(), "error");
    assert_eq!(cfg.sample_rate(), 0.0);
    assert_eq!(cfg.warnings().len(), 2, "{:?}", cfg.warnings());

    let h = Harness::with(|b| b.logger(cfg.clone().with_level("warn")));
    let warnings: Vec<Value> = h.log_lines();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().all(|w| w["level"] == "WARN"));
}

#[test]
fn sample_rate_and_log_event_are_read_from_the_environment() {
    let cfg = LoggerConfig::from_lookup(lookup(&[
        ("POWERTOOLS_LOGGER_SAMPLE_RATE", "0.1"),
        ("POWERTOOLS_LOGGER_LOG_EVENT", "true"),
    ]));
    assert_eq!(cfg.sample_rate(), 0.1);
    assert!(cfg.log_event());
}

#[tokio::test]
async fn the_configured_level_filters_lines() {
    let h = Harness::with(|b| b.logger(LoggerConfig::default().with_level("warn")));
    let f = h.function(FunctionKind::WebhookValidator);
    f.start("r1", None)
        .run(async {
            tracing::info!("hidden");
            tracing::warn!("shown");
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    let messages: Vec<Value> = h.log_lines().iter().map(|l| l["message"].clone()).collect();
    assert_eq!(messages, vec![json!("shown")]);
}

#[tokio::test]
async fn a_strict_level_keeps_the_invocation_context_on_the_lines_it_lets_through() {
    let h = Harness::with(|b| {
        b.logger(LoggerConfig::default().with_level("error"))
            .trace_export(payhook_telemetry::TraceExport::Disabled)
    });
    let f = h.function(FunctionKind::WebhookValidator);
    f.start("r1", None)
        .run(async {
            tracing::info!("hidden");
            tracing::error!("shown");
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    let lines = h.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["function_request_id"], "r1");
    assert_eq!(lines[0]["service"], "webhook-validator");
}

#[tokio::test]
async fn debug_lines_appear_only_in_sampled_invocations() {
    let sampled = Harness::with(|b| b.logger(LoggerConfig::default().with_sample_rate(1.0)));
    let f = sampled.function(FunctionKind::WebhookValidator);
    tracing::debug!("init detail");
    f.start("r1", None)
        .run(async {
            tracing::debug!("sampled detail");
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    let messages: Vec<Value> = sampled
        .log_lines()
        .iter()
        .map(|l| l["message"].clone())
        .collect();
    assert_eq!(messages, vec![json!("sampled detail")]);
    assert_eq!(
        sampled.log_lines()[0]["sampling_rate"],
        1,
        "as Powertools reports it"
    );
    drop(sampled);

    let unsampled = Harness::with(|b| b.logger(LoggerConfig::default().with_sample_rate(0.0)));
    let f = unsampled.function(FunctionKind::WebhookValidator);
    f.start("r1", None)
        .run(async {
            tracing::debug!("unsampled detail");
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    assert!(unsampled.logs.is_empty());
}

#[test]
fn correlation_ids_come_from_api_gateway_sqs_and_eventbridge_events() {
    let apigw = json!({
        "resource": "/webhooks/{provider}",
        "httpMethod": "POST",
        "requestContext": {"requestId": "c6af9ac6-7b61", "httpMethod": "POST"}
    });
    let sqs =
        json!({"Records": [{"messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "body": "{}"}]});
    let eventbridge = json!({"id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "payment.succeeded", "source": "payhook", "detail": {}});
    assert_eq!(apigw.correlation_id(), Some("c6af9ac6-7b61"));
    assert_eq!(
        sqs.correlation_id(),
        Some("059f36b4-87a3-44ab-83d2-661975830a7d")
    );
    assert_eq!(
        eventbridge.correlation_id(),
        Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa")
    );
    assert_eq!(json!({"id": "x"}).correlation_id(), None);

    let typed: aws_lambda_events::event::apigw::ApiGatewayProxyRequest =
        serde_json::from_value(apigw).expect("API Gateway event");
    assert_eq!(typed.correlation_id(), Some("c6af9ac6-7b61"));
    let typed: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_value(sqs).expect("SQS event");
    assert_eq!(
        typed.correlation_id(),
        Some("059f36b4-87a3-44ab-83d2-661975830a7d")
    );
    let typed: aws_lambda_events::event::eventbridge::EventBridgeEvent =
        serde_json::from_value(eventbridge).expect("EventBridge event");
    assert_eq!(
        typed.correlation_id(),
        Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa")
    );
}

#[tokio::test]
async fn a_record_scope_overrides_the_correlation_id() {
    let h = Harness::new();
    let f = h.function(FunctionKind::ProviderProcessor);
    let inv = f.start("r1", None);
    inv.handle().set_correlation_id("batch");
    inv.run(async {
        async { tracing::info!("in record") }
            .instrument(payhook_telemetry::record_span("msg-1", None))
            .await;
        async { tracing::info!("in scope") }
            .instrument(correlation_scope("msg-2"))
            .await;
        tracing::info!("after");
        Ok::<_, TestError>(())
    })
    .await
    .expect("ok");
    let ids: Vec<Value> = h
        .log_lines()
        .iter()
        .map(|l| l["correlation_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("msg-1"), json!("msg-2"), json!("batch")]);
}

#[tokio::test]
async fn lines_about_a_webhook_carry_its_id_and_its_own_trace_whatever_the_invocations() {
    let h = Harness::new();
    let f = h.function(FunctionKind::ProviderProcessor);
    // Trace ids minted now: the X-Ray exporter refuses (panics on) sampled traces from long ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let invocation_trace = format!("1-{now:08x}-aaaaaaaaaaaaaaaaaaaaaaaa");
    let webhook_trace = format!("1-{now:08x}-bbbbbbbbbbbbbbbbbbbbbbbb");
    let invocation_header = format!("Root={invocation_trace};Parent=1111111111111111;Sampled=1");
    let webhook_header = format!("Root={webhook_trace};Parent=2222222222222222;Sampled=1");
    let inv = f.start("r1", Some(&invocation_header));
    inv.handle().set_correlation_id("batch");
    inv.run(async {
        async {
            tracing::info!("claimed");
            async { tracing::info!("put on the bus") }
                .instrument(payhook_telemetry::aws_call_span("EventBridge", "PutEvents"))
                .await;
        }
        .instrument(payhook_telemetry::webhook_record_span(
            "msg-1",
            Some("stripe:evt_1"),
            Some(&webhook_header),
        ))
        .await;
        {
            let _scope =
                payhook_telemetry::webhook_scope("stripe:evt_1", Some(&webhook_header)).entered();
            tracing::info!("published to the bus");
        }
        tracing::info!("batch done");
        Ok::<_, TestError>(())
    })
    .await
    .expect("ok");
    let lines = h.log_lines();
    let keys: Vec<(Value, Value)> = lines
        .iter()
        .map(|l| (l["correlation_id"].clone(), l["xray_trace_id"].clone()))
        .collect();
    let webhook = (json!("stripe:evt_1"), json!(webhook_trace));
    assert_eq!(
        keys,
        vec![
            webhook.clone(),
            webhook.clone(),
            webhook,
            (json!("batch"), json!(invocation_trace)),
        ]
    );
    assert_eq!(lines[0]["messaging.message_id"], "msg-1", "{}", lines[0]);
    for line in &lines {
        let text = line.to_string();
        assert_eq!(text.matches("\"xray_trace_id\"").count(), 1, "{text}");
    }
}

#[tokio::test]
async fn lines_outside_an_invocation_keep_the_key_set_with_null_context() {
    let h = Harness::new();
    tracing::info!(phase = "init", "loading configuration");
    let line = &h.log_lines()[0];
    for key in POWERTOOLS_KEYS {
        assert!(line.get(key).is_some(), "missing {key}: {line}");
    }
    assert_eq!(line["service"], "payhook-tests");
    assert_eq!(line["cold_start"], true);
    assert_eq!(line["function_request_id"], Value::Null);
    assert_eq!(line["phase"], "init");
}

#[tokio::test]
async fn the_incoming_event_is_logged_only_when_asked() {
    let event = json!({"requestContext": {"requestId": "req-9"}, "path": "/webhooks/stripe"});
    for on in [false, true] {
        let h = Harness::with(|b| b.logger(LoggerConfig::default().with_log_event(on)));
        let f = h.function(FunctionKind::WebhookValidator);
        let inv = f.start("r1", None);
        inv.log_event(&event);
        inv.finish_ok();
        let lines = h.log_lines();
        if on {
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0]["message"]["path"], "/webhooks/stripe");
            assert_eq!(lines[0]["function_request_id"], "r1");
            assert_eq!(lines[0]["level"], "INFO");
        } else {
            assert!(lines.is_empty(), "{lines:?}");
        }
    }
}

#[tokio::test]
async fn annotations_and_appended_keys_join_later_lines() {
    let h = Harness::new();
    let f = h.function(FunctionKind::ProviderProcessor);
    let inv = f.start("r1", None);
    let handle = inv.handle();
    inv.run(async {
        handle.annotate(payhook_telemetry::Annotation::Tier, "high");
        handle.append_key("payment_id", "pi_9");
        tracing::info!("published");
        Ok::<_, TestError>(())
    })
    .await
    .expect("ok");
    let line = &h.log_lines()[0];
    assert_eq!(line["tier"], "high");
    assert_eq!(line["payment_id"], "pi_9");
}
