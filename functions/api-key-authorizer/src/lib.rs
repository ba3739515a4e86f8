//! The api-key-authorizer Lambda: an API Gateway REST `REQUEST` authorizer that takes the API
//! key from where a webhook sender can put it and hands it to API Gateway, which then checks it
//! against the usage plan (key valid, daily quota, rate).
//!
//! Stripe, PayPal and Square cannot add headers to their deliveries, but they deliver to any
//! URL they are given, so the key rides in the URL: `POST /webhooks/stripe?key=…`. Callers that
//! can set headers may send `x-api-key` instead. With the REST API's key source set to
//! `AUTHORIZER`, the `usageIdentifierKey` this function returns *is* the request's API key.
//!
//! The function sees the method ARN, the headers and the query string, never the body: the
//! signature is still verified by the validator behind it. It calls no AWS API, so it needs
//! only its logs and X-Ray. Its answers are cached by API Gateway per identity source, so they
//! must not depend on anything else: the policy covers every provider's route of the stage.
//!
//! ```
//! use payhook_api_key_authorizer::{KeySource, authorize};
//!
//! let event = serde_json::from_value(serde_json::json!({
//!     "type": "REQUEST",
//!     "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3/prod/POST/webhooks/stripe",
//!     "queryStringParameters": {"key": "phk_0123456789abcdefghij"},
//!     "requestContext": {}
//! }))?;
//! let allowed = authorize(&event)?;
//! assert_eq!(allowed.source, KeySource::Query);
//! assert_eq!(allowed.response.usage_identifier_key, "phk_0123456789abcdefghij");
//! assert_eq!(
//!     allowed.response.policy_document.statement[0].resource,
//!     ["arn:aws:execute-api:us-east-1:123456789012:a1b2c3/prod/POST/webhooks/*"]
//! );
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::Diagnostic;
use serde::Serialize;

/// The query parameter that carries the key (`/webhooks/stripe?key=…`).
pub const QUERY_PARAMETER: &str = "key";
/// The header that carries the key (API Gateway's own).
pub const HEADER: &str = "x-api-key";
/// The `principalId` of every allowed request: the same for all keys, so nothing in the
/// cached answer or the access log identifies a key but API Gateway's own key id.
pub const PRINCIPAL_ID: &str = "payhook-webhook-sender";
/// The Lambda error message API Gateway turns into `401 {"message":"Unauthorized"}`.
pub const UNAUTHORIZED: &str = "Unauthorized";
/// The routes one answer allows: every provider's, since answers are cached per key.
pub const ALLOWED_ROUTES: &str = "POST/webhooks/*";

/// Where the key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// The `key` query parameter.
    Query,
    /// The `x-api-key` header.
    Header,
}

impl KeySource {
    /// `query` or `header`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Query => "query",
            KeySource::Header => "header",
        }
    }
}

/// Why a request gets no key: API Gateway answers it without calling the validator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizerError {
    /// Neither `?key=` nor `x-api-key` is present, or both are empty (401). Any other value is
    /// handed on: whether it is a key of the usage plan is API Gateway's to say (403 if not).
    #[error("the request carries no API key (?key= or x-api-key)")]
    MissingKey,
    /// The event has no usable `methodArn`: the authorizer is wired wrong (500).
    #[error("the event's methodArn is missing or not an execute-api method ARN")]
    InvalidMethodArn,
}

impl AuthorizerError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthorizerError::MissingKey => "missing_api_key",
            AuthorizerError::InvalidMethodArn => "invalid_method_arn",
        }
    }

    /// Whether API Gateway should answer 401 (the caller's fault) rather than 500.
    pub fn is_unauthorized(&self) -> bool {
        !matches!(self, AuthorizerError::InvalidMethodArn)
    }
}

impl From<AuthorizerError> for Diagnostic {
    /// API Gateway answers 401 only for the exact message `Unauthorized`; any other error is
    /// a 500 (`AuthorizerConfigurationException`), which senders retry.
    fn from(error: AuthorizerError) -> Diagnostic {
        Diagnostic {
            error_type: error.code().to_owned(),
            error_message: if error.is_unauthorized() {
                UNAUTHORIZED.to_owned()
            } else {
                error.to_string()
            },
        }
    }
}

/// The authorizer's answer, in the shape API Gateway reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    /// Always [`PRINCIPAL_ID`].
    pub principal_id: &'static str,
    /// Allows `execute-api:Invoke` on the stage's webhook routes.
    pub policy_document: PolicyDocument,
    /// The API key API Gateway checks against the usage plan.
    pub usage_identifier_key: String,
}

/// An IAM policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    /// `2012-10-17`.
    pub version: &'static str,
    /// One Allow statement.
    pub statement: Vec<PolicyStatement>,
}

/// One statement of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyStatement {
    /// `Allow`.
    pub effect: &'static str,
    /// `execute-api:Invoke`.
    pub action: &'static str,
    /// The stage's webhook routes.
    pub resource: Vec<String>,
}

/// An allowed request: the answer and where its key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// What API Gateway gets.
    pub response: AuthorizerResponse,
    /// Where the key was found (logged; the key never is).
    pub source: KeySource,
}

/// The API key of a request and where it was found: the `key` query parameter first, else the
/// `x-api-key` header (case-insensitive); an empty value counts as absent. The local stack's
/// front door uses the same rule.
pub fn api_key<'a>(
    query: Option<&'a str>,
    header: Option<&'a str>,
) -> Result<(&'a str, KeySource), AuthorizerError> {
    let present = |value: Option<&'a str>| value.filter(|v| !v.is_empty());
    match (present(query), present(header)) {
        (Some(key), _) => Ok((key, KeySource::Query)),
        (None, Some(key)) => Ok((key, KeySource::Header)),
        (None, None) => Err(AuthorizerError::MissingKey),
    }
}

/// The resource one answer allows: `arn:…:{api id}/{stage}/POST/webhooks/*`, from the method
/// ARN `arn:aws:execute-api:{region}:{account}:{api id}/{stage}/{method}/{path}`.
pub fn allowed_resource(method_arn: &str) -> Result<String, AuthorizerError> {
    let mut parts = method_arn.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(api), Some(stage), Some(_))
            if api.starts_with("arn:") && api.contains(":execute-api:") && !stage.is_empty() =>
        {
            Ok(format!("{api}/{stage}/{ALLOWED_ROUTES}"))
        }
        _ => Err(AuthorizerError::InvalidMethodArn),
    }
}

/// Decides one request: its key as `usageIdentifierKey` with a policy allowing the stage's
/// webhook routes, or why it has none.
pub fn authorize(
    event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<Authorization, AuthorizerError> {
    let query = event.query_string_parameters.first(QUERY_PARAMETER);
    let header = event.headers.get(HEADER).and_then(|v| v.to_str().ok());
    let (key, source) = api_key(query, header)?;
    let resource = allowed_resource(event.method_arn.as_deref().unwrap_or_default())?;
    Ok(Authorization {
        response: AuthorizerResponse {
            principal_id: PRINCIPAL_ID,
            policy_document: PolicyDocument {
                version: "2012-10-17",
                statement: vec![PolicyStatement {
                    effect: "Allow",
                    action: "execute-api:Invoke",
                    resource: vec![resource],
                }],
            },
            usage_identifier_key: key.to_owned(),
        },
        source,
    })
}

/// [`authorize`] with its log line: the outcome and the key's source, never the key.
pub fn invoke(
    event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<AuthorizerResponse, AuthorizerError> {
    match authorize(event) {
        Ok(allowed) => {
            tracing::info!(key_source = allowed.source.as_str(), "API key handed on");
            Ok(allowed.response)
        }
        Err(error) if error.is_unauthorized() => {
            tracing::info!(reason = error.code(), "request refused: {error}");
            Err(error)
        }
        Err(error) => {
            tracing::error!(
                error_code = error.code(),
                "authorizer misconfigured: {error}"
            );
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "phk_0123456789abcdefghijKLMN";
    const METHOD_ARN: &str =
        "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/POST/webhooks/stripe";

    fn fixture() -> serde_json::Value {
        serde_json::from_slice(include_bytes!(
            "../tests/fixtures/request-authorizer-event.json"
        ))
        .expect("fixture is JSON")
    }

    fn event(value: serde_json::Value) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        serde_json::from_value(value).expect("an authorizer event")
    }

    fn with(
        query: Option<&str>,
        header: Option<&str>,
    ) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        let mut value = fixture();
        value["queryStringParameters"] = query.map_or(json!(null), |k| json!({ "key": k }));
        value["multiValueQueryStringParameters"] =
            query.map_or(json!(null), |k| json!({ "key": [k] }));
        let headers = value["headers"].as_object_mut().expect("headers");
        headers.remove("x-api-key");
        if let Some(k) = header {
            headers.insert("X-Api-Key".to_owned(), json!(k));
        }
        event(value)
    }

    #[test]
    fn recorded_event_hands_its_query_key_to_the_usage_plan() {
        let allowed = authorize(&event(fixture())).unwrap();
        assert_eq!(allowed.source, KeySource::Query);
        let answer = serde_json::to_value(&allowed.response).unwrap();
        assert_eq!(
            answer,
            json!({
                "principalId": PRINCIPAL_ID,
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Action": "execute-api:Invoke",
                        "Resource": ["arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/POST/webhooks/*"]
                    }]
                },
                "usageIdentifierKey": "phk_fixture_0123456789abcdef"
            })
        );
    }

    #[test]
    fn header_key_is_used_when_the_url_has_none() {
        let allowed = authorize(&with(None, Some(KEY))).unwrap();
        assert_eq!(allowed.source, KeySource::Header);
        assert_eq!(allowed.response.usage_identifier_key, KEY);
    }

    #[test]
    fn query_key_wins_over_the_header() {
        let other = "phk_header_0123456789abcdef";
        let allowed = authorize(&with(Some(KEY), Some(other))).unwrap();
        assert_eq!(allowed.response.usage_identifier_key, KEY);
    }

    #[test]
    fn request_without_a_key_is_unauthorized() {
        let error = authorize(&with(None, None)).unwrap_err();
        assert_eq!(error, AuthorizerError::MissingKey);
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_message, UNAUTHORIZED);
        assert_eq!(diagnostic.error_type, "missing_api_key");
    }

    #[test]
    fn empty_key_parameter_counts_as_absent() {
        assert_eq!(
            authorize(&with(Some(""), None)).unwrap_err(),
            AuthorizerError::MissingKey
        );
        let allowed = authorize(&with(Some(""), Some(KEY))).unwrap();
        assert_eq!(allowed.source, KeySource::Header);
    }

    #[test]
    fn any_other_key_is_handed_on_for_api_gateway_to_judge() {
        for key in ["short", "phk_wrong", "not a key at all"] {
            let allowed = authorize(&with(Some(key), None)).unwrap();
            assert_eq!(allowed.response.usage_identifier_key, key);
        }
    }

    #[test]
    fn one_answer_allows_every_provider_route_of_the_stage_and_nothing_else() {
        assert_eq!(
            allowed_resource(METHOD_ARN).unwrap(),
            "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/POST/webhooks/*"
        );
        for bad in [
            "",
            "not-an-arn",
            "arn:aws:lambda:us-east-1:1:function:x/prod/POST/x",
            "arn:aws:execute-api:us-east-1:1:api",
        ] {
            assert_eq!(
                allowed_resource(bad),
                Err(AuthorizerError::InvalidMethodArn),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_method_arn_is_a_server_error_not_a_401() {
        let mut value = fixture();
        value["methodArn"] = json!(null);
        let error = authorize(&event(value)).unwrap_err();
        assert!(!error.is_unauthorized());
        assert_ne!(Diagnostic::from(error).error_message, UNAUTHORIZED);
    }

    #[test]
    fn the_answer_never_carries_the_key_anywhere_but_usage_identifier_key() {
        let answer =
            serde_json::to_string(&authorize(&with(Some(KEY), None)).unwrap().response).unwrap();
        assert_eq!(answer.matches(KEY).count(), 1);
    }
}
