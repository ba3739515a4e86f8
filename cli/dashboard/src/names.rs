//! The resource names a dashboard's `${…}` placeholders stand for (`dashboards/README.md`), for
//! the local stack or a deployed stage, and the filling of a dashboard body with them.

use std::collections::BTreeMap;

use payhook_core::Provider;
use serde_json::Value;

/// The deployed functions by logical name (the `service` dimension of `Payhook` metrics): the
/// one list `payhook check` uses ([`payhook_cloudwatch::check::stack::function_names`]).
pub(crate) fn functions() -> &'static [String] {
    static FUNCTIONS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FUNCTIONS.get_or_init(payhook_cloudwatch::check::stack::function_names)
}

/// Whether `name` is one of the deployed [`functions`].
pub(crate) fn is_function(name: &str) -> bool {
    functions().iter().any(|f| f == name)
}

/// The account id written into local alarm ARNs (the local bus uses the same).
pub(crate) const LOCAL_ACCOUNT: &str = "000000000000";

/// The region of the local stack.
pub(crate) use payhook_aws::DEFAULT_REGION as LOCAL_REGION;

/// The stage name of the local stack.
pub(crate) use payhook_aws::provision::DEFAULT_LOCAL_STAGE as LOCAL_STAGE;

/// Providers by name, in the order of [`Provider::ALL`].
pub(crate) fn providers() -> impl Iterator<Item = &'static str> {
    Provider::ALL.iter().map(|p| p.as_str())
}

/// Every name a placeholder can stand for.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// `local`, or the deployed stage.
    pub(crate) stage: String,
    /// The AWS region.
    pub(crate) region: String,
    /// Whether these are the local stack's names (no `payhook-<stage>-` prefix on resources).
    pub(crate) local: bool,
    /// Base of runbook and source links, without a trailing `/`.
    pub(crate) runbook_base_url: String,
    /// Account id used in alarm ARNs.
    pub(crate) account: String,
}

impl Names {
    /// The local stack's names: functions, queues and DLQs as the local stack names them.
    pub(crate) fn local(runbook_base_url: String, stage: Option<&str>) -> Names {
        Names {
            stage: stage.unwrap_or(LOCAL_STAGE).to_owned(),
            region: LOCAL_REGION.to_owned(),
            local: true,
            runbook_base_url,
            account: LOCAL_ACCOUNT.to_owned(),
        }
    }

    /// A deployed stage's names, as Pulumi creates them.
    pub(crate) fn deployed(stage: &str, region: &str, runbook_base_url: String) -> Names {
        Names {
            stage: stage.to_owned(),
            region: region.to_owned(),
            local: false,
            runbook_base_url,
            account: LOCAL_ACCOUNT.to_owned(),
        }
    }

    /// `payhook-<stage>`.
    pub(crate) fn prefix(&self) -> String {
        format!("payhook-{}", self.stage)
    }

    fn scoped(&self, name: &str) -> String {
        if self.local {
            name.to_owned()
        } else {
            format!("{}-{name}", self.prefix())
        }
    }

    /// A function's name (`FunctionName` dimension).
    pub(crate) fn function(&self, logical: &str) -> String {
        self.scoped(logical)
    }

    /// A provider's FIFO queue.
    pub(crate) fn queue(&self, provider: &str) -> String {
        self.scoped(&format!("{provider}.fifo"))
    }

    /// A provider's dead-letter queue, or the events DLQ for `events`.
    pub(crate) fn dlq(&self, which: &str) -> String {
        if which == "events" {
            self.scoped("events-dlq")
        } else {
            self.scoped(&format!("{which}-dlq.fifo"))
        }
    }

    /// The REST API's name (`ApiName` dimension).
    pub(crate) fn api_name(&self) -> String {
        format!("{}-webhooks", self.prefix())
    }

    /// The status table.
    pub(crate) fn table(&self) -> String {
        "webhook-processing".to_owned()
    }

    /// The event bus.
    pub(crate) fn bus(&self) -> String {
        payhook_core::ports::PAYMENT_EVENTS_BUS.to_owned()
    }

    /// A function's log group.
    pub(crate) fn log_group(&self, logical: &str) -> String {
        format!("/aws/lambda/{}", self.function(logical))
    }

    /// The API's access log group.
    pub(crate) fn api_access_log_group(&self) -> String {
        format!("/aws/apigateway/{}/access", self.api_name())
    }

    /// The ARN of an alarm named `name`.
    pub(crate) fn alarm_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            self.region, self.account
        )
    }

    /// The placeholders of a dashboard body (all but the `${alarm_arns}` list).
    pub(crate) fn dashboard_placeholders(&self, dashboard_name: &str) -> BTreeMap<String, String> {
        let mut map = self.common_placeholders();
        map.insert("dashboard_name".into(), dashboard_name.to_owned());
        map.insert("runbook_base_url".into(), self.runbook_base_url.clone());
        for p in providers() {
            map.insert(format!("queue.{p}"), self.queue(p));
            map.insert(format!("dlq.{p}"), self.dlq(p));
        }
        map.insert("dlq.events".into(), self.dlq("events"));
        for f in functions() {
            map.insert(format!("function.{f}"), self.function(f));
            map.insert(format!("log_group.{f}"), self.log_group(f));
        }
        map.insert("log_group.api-access".into(), self.api_access_log_group());
        map
    }

    /// The placeholders every alarm scope has.
    pub(crate) fn common_placeholders(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("region".to_owned(), self.region.clone()),
            ("stage".to_owned(), self.stage.clone()),
            ("prefix".to_owned(), self.prefix()),
            ("api_name".to_owned(), self.api_name()),
            ("table_name".to_owned(), self.table()),
            ("event_bus_name".to_owned(), self.bus()),
        ])
    }
}

/// Replaces every `${name}` in `text` found in `values`; unknown names are left as written and
/// reported in `unknown`.
pub(crate) fn fill_text(
    text: &str,
    values: &BTreeMap<String, String>,
    unknown: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match values.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        unknown.push(name.to_owned());
                        out.push_str(&rest[start..start + 2 + end + 1]);
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Fills a dashboard body: every string, and the `"${alarm_arns}"` array element, which becomes
/// all of `alarm_arns`.
pub(crate) fn fill_value(
    value: &Value,
    values: &BTreeMap<String, String>,
    alarm_arns: &[String],
    unknown: &mut Vec<String>,
) -> Value {
    match value {
        Value::String(s) => Value::String(fill_text(s, values, unknown)),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if item.as_str() == Some("${alarm_arns}") {
                    out.extend(alarm_arns.iter().cloned().map(Value::String));
                } else {
                    out.push(fill_value(item, values, alarm_arns, unknown));
                }
            }
            Value::Array(out)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill_value(v, values, alarm_arns, unknown)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_next_to_text_are_all_filled() {
        let names = Names::local("..".into(), None);
        let values = names.dashboard_placeholders("payhook-local-payments");
        let mut unknown = Vec::new();
        let out = fill_text(
            "SOURCE '${log_group.webhook-validator}' | ${queue.stripe}/${nope}",
            &values,
            &mut unknown,
        );
        assert_eq!(
            out,
            "SOURCE '/aws/lambda/webhook-validator' | stripe.fifo/${nope}"
        );
        assert_eq!(unknown, vec!["nope".to_owned()]);
    }

    #[test]
    fn deployed_names_carry_the_stage_prefix() {
        let names = Names::deployed("prod", "eu-west-1", String::new());
        assert_eq!(
            names.function("event-processor"),
            "payhook-prod-event-processor"
        );
        assert_eq!(names.queue("stripe"), "payhook-prod-stripe.fifo");
        assert_eq!(names.dlq("square"), "payhook-prod-square-dlq.fifo");
        assert_eq!(names.dlq("events"), "payhook-prod-events-dlq");
        assert_eq!(
            names.api_access_log_group(),
            "/aws/apigateway/payhook-prod-webhooks/access"
        );
    }

    #[test]
    fn the_alarm_arns_element_expands_to_every_arn() {
        let body = serde_json::json!({"alarms": ["${alarm_arns}"]});
        let mut unknown = Vec::new();
        let out = fill_value(
            &body,
            &BTreeMap::new(),
            &["a".into(), "b".into()],
            &mut unknown,
        );
        assert_eq!(out, serde_json::json!({"alarms": ["a", "b"]}));
    }
}
