//! The wrapper for `lambda_runtime` handlers: [`service`] turns
//! `async fn(LambdaEvent<A>, InvocationHandle) -> Result<R, E>` into the `Service` that
//! `lambda_runtime::run` drives, running every call inside an [`Invocation`] (context for logs,
//! cold start, correlation id, event logging, handler subsegment, one metrics flush) and mapping
//! errors to a [`Diagnostic`] whose `error_type` is `Retryable` or `NonRetryable`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use aws_lambda_events::event::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Diagnostic, LambdaEvent, Service};
use serde::Serialize;
use serde_json::Value;

use crate::invocation::{
    ClassifiedError, FunctionTelemetry, Invocation, InvocationContext, InvocationHandle,
};
use crate::redact::redact_text;
use crate::tracer::SQS_TRACE_ATTRIBUTE;

/// `error_type` of a failure that may succeed when retried.
pub const RETRYABLE: &str = "Retryable";
/// `error_type` of a failure that will fail again on the same input.
pub const NON_RETRYABLE: &str = "NonRetryable";

/// The id that ties the log lines of one request together, taken from the incoming event:
/// API Gateway's `requestContext.requestId`, the SQS message id (of the first record; set a
/// per-record id with [`crate::record_span`]), the EventBridge event id.
pub trait CorrelationId {
    /// The correlation id, if the event has one.
    fn correlation_id(&self) -> Option<&str> {
        None
    }
}

impl CorrelationId for ApiGatewayProxyRequest {
    fn correlation_id(&self) -> Option<&str> {
        self.request_context.request_id.as_deref()
    }
}

impl CorrelationId for ApiGatewayV2httpRequest {
    fn correlation_id(&self) -> Option<&str> {
        self.request_context.request_id.as_deref()
    }
}

impl CorrelationId for SqsEvent {
    fn correlation_id(&self) -> Option<&str> {
        self.records.first().and_then(|r| r.message_id.as_deref())
    }
}

impl CorrelationId for SqsMessage {
    fn correlation_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }
}

impl<T: Serialize + serde::de::DeserializeOwned> CorrelationId for EventBridgeEvent<T> {
    fn correlation_id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

impl CorrelationId for () {}

impl CorrelationId for Value {
    /// Recognises the three event shapes by their members.
    fn correlation_id(&self) -> Option<&str> {
        if let Some(id) = self.pointer("/requestContext/requestId") {
            return id.as_str();
        }
        if let Some(id) = self.pointer("/Records/0/messageId") {
            return id.as_str();
        }
        if self.get("detail-type").is_some() {
            return self.get("id").and_then(Value::as_str);
        }
        None
    }
}

/// The record's span (see [`crate::record_span`]), from an SQS message: its message id and its
/// `AWSTraceHeader` attribute.
pub fn sqs_record_span(message: &SqsMessage) -> tracing::Span {
    crate::tracer::record_span(
        message.message_id.as_deref().unwrap_or_default(),
        message
            .attributes
            .get(SQS_TRACE_ATTRIBUTE)
            .map(String::as_str),
    )
}

/// The runtime's `Diagnostic` for an error: `error_type` `Retryable` or `NonRetryable`, and
/// `error_message` `"{code}: {message}"`, redacted.
pub fn diagnostic<E: ClassifiedError + ?Sized>(error: &E) -> Diagnostic {
    Diagnostic {
        error_type: if error.retryable() {
            RETRYABLE
        } else {
            NON_RETRYABLE
        }
        .to_owned(),
        error_message: format!("{}: {}", error.code(), redact_text(&error.to_string())),
    }
}

/// The details of a `lambda_runtime` context that telemetry uses.
pub fn invocation_context(cx: &lambda_runtime::Context) -> InvocationContext<'_> {
    InvocationContext {
        request_id: &cx.request_id,
        trace_header: cx.xray_trace_id.as_deref(),
        function_arn: Some(&cx.invoked_function_arn),
        function_name: Some(&cx.env_config.function_name),
        memory_size_mb: u32::try_from(cx.env_config.memory).ok().filter(|m| *m > 0),
    }
}

/// A `lambda_runtime` service that runs `handler` inside an invocation.
pub struct LambdaService<F> {
    function: FunctionTelemetry,
    handler: F,
}

impl<F> fmt::Debug for LambdaService<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaService")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

/// Wraps a handler for `lambda_runtime::run`.
///
/// ```no_run
/// use lambda_runtime::LambdaEvent;
/// use payhook_telemetry::{
///     ClassifiedError, Dimension, FunctionConfig, FunctionKind, InvocationHandle, Metric, Telemetry,
/// };
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("queue unavailable")]
/// struct QueueDown;
/// impl ClassifiedError for QueueDown {
///     fn code(&self) -> &'static str { "queue_unavailable" }
///     fn retryable(&self) -> bool { true }
/// }
///
/// async fn handler(event: LambdaEvent<serde_json::Value>, inv: InvocationHandle) -> Result<(), QueueDown> {
///     inv.count(Metric::WebhooksReceived, &[(Dimension::Provider, "stripe")]);
///     tracing::info!("received");
///     Ok(())
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let telemetry = Telemetry::init_lambda()?;
///     let function = telemetry.function(FunctionConfig::from_env(FunctionKind::WebhookValidator)?);
///     lambda_runtime::run(payhook_telemetry::lambda::service(function, handler))
///         .await
///         .map_err(|e| e as Box<dyn std::error::Error>)
/// }
/// ```
pub fn service<F>(function: FunctionTelemetry, handler: F) -> LambdaService<F> {
    LambdaService { function, handler }
}

impl<A, F, Fut, R, E> Service<LambdaEvent<A>> for LambdaService<F>
where
    A: CorrelationId + Serialize,
    F: FnMut(LambdaEvent<A>, InvocationHandle) -> Fut,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Send + 'static,
    E: ClassifiedError + Send + 'static,
{
    type Response = R;
    type Error = Diagnostic;
    type Future = Pin<Box<dyn Future<Output = Result<R, Diagnostic>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<A>) -> Self::Future {
        let invocation: Invocation = self.function.start_with(invocation_context(&event.context));
        let handle = invocation.handle();
        if let Some(id) = event.payload.correlation_id() {
            handle.set_correlation_id(id);
        }
        invocation.log_event(&event.payload);
        let future = {
            // Spans the handler creates before its first await belong to the invocation too.
            let _entered = invocation.span().enter();
            (self.handler)(event, handle)
        };
        Box::pin(async move { invocation.run(future).await.map_err(|e| diagnostic(&e)) })
    }
}
