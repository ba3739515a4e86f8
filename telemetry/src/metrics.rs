//! CloudWatch Embedded Metric Format (EMF): the per-invocation metric buffer and its encoder.
//!
//! Metrics recorded during an invocation are kept in a [`MetricSet`] and written as EMF
//! documents once, when the invocation finishes (also when the handler fails). The encoder
//! follows `../shared/conformance/emf/SPEC.md`:
//! - one document per set of compatible dimension values; a metric's values with the same
//!   dimensions are written as one array;
//! - a document never holds more than [`MAX_METRICS_PER_DOCUMENT`] metric definitions, and a
//!   metric never more than [`MAX_VALUES_PER_METRIC`] values: the encoder starts a new document
//!   before either limit is crossed;
//! - a dimension set never exceeds [`MAX_DIMENSIONS_PER_SET`] keys: this is checked when default
//!   dimensions are configured ([`MetricsConfig::with_default_dimension`]), because a dimension
//!   set cannot be split without changing what it means;
//! - units and storage resolution come from the [`catalogue`](mod@crate::catalogue); the `service`
//!   dimension and the default dimensions are added to every set;
//! - `ColdStart` goes in a document of its own with `service` and `function_name`, as
//!   Powertools does.

use std::borrow::Cow;

use crate::catalogue::{Dimension, Metric, Resolution, Unit};
use crate::error::TelemetryError;
use crate::json;

/// The namespace when `POWERTOOLS_METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Payhook";
/// The environment variable naming the CloudWatch namespace (as in Powertools).
pub const NAMESPACE_ENV: &str = "POWERTOOLS_METRICS_NAMESPACE";
/// At most this many metric definitions per EMF document (spec; Powertools and
/// aws-embedded-metrics split at the same number).
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// At most this many values in one metric's array.
pub const MAX_VALUES_PER_METRIC: usize = 100;
/// At most this many keys in one dimension set.
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
/// At most this many characters in a dimension value.
pub const MAX_DIMENSION_VALUE_LEN: usize = 1024;
/// At most this many characters in a dimension name.
pub const MAX_DIMENSION_NAME_LEN: usize = 250;
/// At most this many characters in a namespace (the strictest of the three sources).
pub const MAX_NAMESPACE_LEN: usize = 255;
/// What an empty or blank dimension value is replaced with (CloudWatch rejects empty values).
pub const UNKNOWN_DIMENSION_VALUE: &str = "unknown";

/// Whether CloudWatch accepts `namespace`: 1-255 characters from `[A-Za-z0-9._#:/-]`, not
/// starting with `:`.
pub fn is_valid_namespace(namespace: &str) -> bool {
    (1..=MAX_NAMESPACE_LEN).contains(&namespace.len())
        && !namespace.starts_with(':')
        && namespace.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'#' | b':' | b'/' | b'-')
        })
}

/// Where a function's metrics go and what every document carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    namespace: String,
    service: String,
    default_dimensions: Vec<(String, String)>,
}

impl MetricsConfig {
    /// A namespace and the `service` dimension value.
    pub fn new(
        namespace: impl Into<String>,
        service: impl Into<String>,
    ) -> Result<Self, TelemetryError> {
        let namespace = namespace.into();
        if !is_valid_namespace(&namespace) {
            return Err(TelemetryError::InvalidNamespace(namespace));
        }
        Ok(Self {
            namespace,
            service: sanitize_dimension_value(&service.into()).into_owned(),
            default_dimensions: Vec::new(),
        })
    }

    /// Adds a dimension to every metric (for example `stage=prod`). Fails if the name is not
    /// usable, or if the catalogue's largest dimension set plus the default dimensions would
    /// exceed [`MAX_DIMENSIONS_PER_SET`].
    pub fn with_default_dimension(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, TelemetryError> {
        let name = name.into();
        let value = value.into();
        let bad = |why| Err(TelemetryError::InvalidDimensionName(name.clone(), why));
        if name.is_empty() || name.len() > MAX_DIMENSION_NAME_LEN {
            return bad("use 1-250 characters");
        }
        if name.starts_with(':') || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return bad("use printable ASCII without spaces, not starting with ':'");
        }
        if name == "_aws"
            || Dimension::ALL.iter().any(|d| d.as_str() == name)
            || Metric::from_name(&name).is_some()
        {
            return bad("the name is reserved by EMF or by the metric catalogue");
        }
        if self.default_dimensions.iter().any(|(n, _)| *n == name) {
            return bad("already set");
        }
        let blank = value.trim().is_empty();
        if blank
            || value.len() > MAX_DIMENSION_VALUE_LEN
            || !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        {
            return Err(TelemetryError::InvalidDimensionValue(name));
        }
        let largest_set = Metric::ALL
            .iter()
            .flat_map(|m| m.def().dimension_sets.iter())
            .map(|s| s.len())
            .max()
            .unwrap_or(0);
        if largest_set + self.default_dimensions.len() + 1 > MAX_DIMENSIONS_PER_SET {
            return Err(TelemetryError::TooManyDimensions(
                self.default_dimensions.len() + 1,
            ));
        }
        self.default_dimensions.push((name, value));
        Ok(self)
    }

    /// The CloudWatch namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The `service` dimension value.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Dimensions added to every metric.
    pub fn default_dimensions(&self) -> &[(String, String)] {
        &self.default_dimensions
    }
}

/// Why a metric was not recorded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricRejected {
    /// NaN or infinite values cannot be written as JSON numbers.
    #[error("metric {0} value is not a finite number")]
    NotFinite(&'static str),
    /// The call site passed other dimensions than the catalogue declares.
    #[error("metric {metric} takes dimensions {expected:?}, got {got:?}")]
    DimensionsMismatch {
        /// The metric.
        metric: &'static str,
        /// What the catalogue declares (without the implicit `service`).
        expected: Vec<&'static str>,
        /// What was passed.
        got: Vec<&'static str>,
    },
    /// `ColdStart` is recorded by the invocation wrapper, never by handlers.
    #[error("metric {0} is recorded by the telemetry crate itself")]
    Reserved(&'static str),
}

/// Replaces what CloudWatch rejects in a dimension value: non-ASCII and control characters
/// become `?`, blank values become [`UNKNOWN_DIMENSION_VALUE`], long values are cut at
/// [`MAX_DIMENSION_VALUE_LEN`].
pub fn sanitize_dimension_value(value: &str) -> Cow<'_, str> {
    let clean = value.len() <= MAX_DIMENSION_VALUE_LEN
        && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        && value.bytes().any(|b| b != b' ');
    if clean {
        return Cow::Borrowed(value);
    }
    let mut out: String = value
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(MAX_DIMENSION_VALUE_LEN)
        .collect();
    if out.trim().is_empty() {
        out = UNKNOWN_DIMENSION_VALUE.to_owned();
    }
    Cow::Owned(out)
}

#[derive(Debug, Clone)]
struct Series {
    name: &'static str,
    unit: Unit,
    resolution: Resolution,
    dimension_sets: &'static [&'static [Dimension]],
    /// Dimension values, sorted by dimension.
    dims: Vec<(Dimension, String)>,
    values: Vec<f64>,
}

/// At most this many forgotten series are kept for reuse.
const MAX_SPARE_SERIES: usize = 64;

/// The metrics recorded during one invocation, waiting to be flushed as EMF.
#[derive(Debug, Default, Clone)]
pub struct MetricSet {
    series: Vec<Series>,
    /// Series forgotten by [`MetricSet::clear`], kept with their allocations for the next
    /// values recorded.
    spare: Vec<Series>,
}

impl MetricSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        for series in self.series.drain(..) {
            if self.spare.len() < MAX_SPARE_SERIES
                && series.values.capacity() <= MAX_VALUES_PER_METRIC
            {
                self.spare.push(series);
            }
        }
    }

    /// Records one value of a catalogued metric. `dims` must name exactly the dimensions the
    /// catalogue declares for it, apart from the implicit `service`.
    pub fn add(
        &mut self,
        metric: Metric,
        value: f64,
        dims: &[(Dimension, &str)],
    ) -> Result<(), MetricRejected> {
        let def = metric.def();
        if metric == Metric::ColdStart {
            return Err(MetricRejected::Reserved(def.name));
        }
        // Exactly the catalogue's explicit dimensions, each once (checked without allocating:
        // this runs for every value recorded).
        let declared = |d: Dimension| def.dimension_sets.iter().any(|set| set.contains(&d));
        let all_declared = dims.iter().enumerate().all(|(i, (d, _))| {
            !d.is_implicit() && declared(*d) && !dims[..i].iter().any(|(e, _)| e == d)
        });
        let all_given = def
            .dimension_sets
            .iter()
            .flat_map(|set| set.iter())
            .all(|d| d.is_implicit() || dims.iter().any(|(g, _)| g == d));
        if !(all_declared && all_given) {
            return Err(MetricRejected::DimensionsMismatch {
                metric: def.name,
                expected: def
                    .explicit_dimensions()
                    .iter()
                    .map(|d| d.as_str())
                    .collect(),
                got: dims.iter().map(|(d, _)| d.as_str()).collect(),
            });
        }
        self.add_raw(
            def.name,
            def.unit,
            def.resolution,
            def.dimension_sets,
            value,
            dims,
        )
    }

    /// Records a value without consulting the catalogue (the crate's own `ColdStart`, and tests
    /// of the encoder's limits with more metrics than the catalogue has).
    pub(crate) fn add_raw(
        &mut self,
        name: &'static str,
        unit: Unit,
        resolution: Resolution,
        dimension_sets: &'static [&'static [Dimension]],
        value: f64,
        dims: &[(Dimension, &str)],
    ) -> Result<(), MetricRejected> {
        if !value.is_finite() {
            return Err(MetricRejected::NotFinite(name));
        }
        let existing = self.series.iter_mut().find(|s| {
            s.name == name
                && s.dims.len() == dims.len()
                && dims
                    .iter()
                    .all(|(d, v)| s.dims.iter().any(|(sd, sv)| sd == d && same_value(sv, v)))
        });
        match existing {
            Some(series) => series.values.push(value),
            None => {
                // A forgotten series' vectors and strings, when there is one.
                let (mut owned, mut values) = match self.spare.pop() {
                    Some(old) => (old.dims, old.values),
                    None => (Vec::with_capacity(dims.len()), Vec::with_capacity(1)),
                };
                owned.truncate(dims.len());
                for (i, (d, v)) in dims.iter().enumerate() {
                    let v = sanitize_dimension_value(v);
                    match owned.get_mut(i) {
                        Some(slot) => {
                            slot.0 = *d;
                            slot.1.clear();
                            slot.1.push_str(&v);
                        }
                        None => owned.push((*d, v.into_owned())),
                    }
                }
                owned.sort_by_key(|(d, _)| *d);
                values.clear();
                values.push(value);
                self.series.push(Series {
                    name,
                    unit,
                    resolution,
                    dimension_sets,
                    dims: owned,
                    values,
                });
            }
        }
        Ok(())
    }

    /// Encodes everything recorded as EMF documents (one JSON object per string), split so
    /// that no limit is crossed. `timestamp_ms` is the documents' `_aws.Timestamp`.
    pub fn encode(&self, config: &MetricsConfig, timestamp_ms: i64) -> Vec<String> {
        let docs = plan_documents(&self.series);
        docs.iter()
            .map(|doc| {
                let mut buf = String::with_capacity(256 + doc.chunks.len() * 64);
                write_document(&mut buf, doc, config, timestamp_ms, None);
                buf
            })
            .collect()
    }

    /// [`MetricSet::encode`] into one buffer, each document followed by a newline, for
    /// [`Sink::write_lines`](crate::Sink::write_lines): one write per flush.
    pub(crate) fn encode_lines(
        &self,
        config: &MetricsConfig,
        timestamp_ms: i64,
        buf: &mut String,
        cache: &mut DirectiveCache,
    ) {
        for doc in &plan_documents(&self.series) {
            write_document(buf, doc, config, timestamp_ms, Some(&mut *cache));
            buf.push('\n');
        }
    }
}

fn same_value(stored: &str, given: &str) -> bool {
    stored == given || stored == sanitize_dimension_value(given)
}

/// One metric's values (at most [`MAX_VALUES_PER_METRIC`]) placed in one document.
struct Chunk<'a> {
    series: &'a Series,
    values: &'a [f64],
}

struct PlannedDoc<'a> {
    chunks: Vec<Chunk<'a>>,
    /// The union of the chunks' dimension values (they never conflict within a document).
    dims: Vec<(Dimension, &'a str)>,
}

impl PlannedDoc<'_> {
    fn accepts(&self, series: &Series) -> bool {
        self.chunks.len() < MAX_METRICS_PER_DOCUMENT
            && !self.chunks.iter().any(|c| c.series.name == series.name)
            && series.dims.iter().all(|(d, v)| {
                self.dims
                    .iter()
                    .all(|(dd, dv)| dd != d || *dv == v.as_str())
            })
    }
}

/// Places every series' values into as few documents as the limits allow: a document takes a
/// chunk if it has room for another metric definition, does not hold that metric yet, and
/// agrees on every shared dimension value.
fn plan_documents(series: &[Series]) -> Vec<PlannedDoc<'_>> {
    // Sized for the usual flush: one document holding every series.
    let mut docs: Vec<PlannedDoc<'_>> = Vec::with_capacity(1);
    for s in series {
        for values in s.values.chunks(MAX_VALUES_PER_METRIC) {
            let idx = match docs.iter().position(|d| d.accepts(s)) {
                Some(i) => i,
                None => {
                    docs.push(PlannedDoc {
                        chunks: Vec::with_capacity(series.len().min(MAX_METRICS_PER_DOCUMENT)),
                        dims: Vec::with_capacity(s.dims.len().max(2)),
                    });
                    docs.len() - 1
                }
            };
            let doc = &mut docs[idx];
            for (d, v) in &s.dims {
                if !doc.dims.iter().any(|(dd, _)| dd == d) {
                    doc.dims.push((*d, v.as_str()));
                }
            }
            doc.chunks.push(Chunk { series: s, values });
        }
    }
    docs
}

/// What a document's `CloudWatchMetrics` directives depend on besides the configuration: each
/// chunk's metric, unit, resolution and dimension sets, in order.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DirectiveKey {
    name: &'static str,
    unit: Unit,
    resolution: Resolution,
    dimension_sets: &'static [&'static [Dimension]],
}

impl DirectiveKey {
    fn of(chunk: &Chunk<'_>) -> Self {
        let s = chunk.series;
        Self {
            name: s.name,
            unit: s.unit,
            resolution: s.resolution,
            dimension_sets: s.dimension_sets,
        }
    }
}

/// At most this many directive lists are kept per function (a function emits a few shapes of
/// document, invocation after invocation).
const MAX_CACHED_DIRECTIVES: usize = 32;

/// The `CloudWatchMetrics` directives of the documents one function flushes, rendered once per
/// shape of document rather than at every flush (they depend only on the configuration and on
/// which metrics a document holds).
#[derive(Debug, Default)]
pub(crate) struct DirectiveCache {
    entries: Vec<(Vec<DirectiveKey>, String)>,
}

impl DirectiveCache {
    fn push_directives(&mut self, buf: &mut String, doc: &PlannedDoc<'_>, config: &MetricsConfig) {
        let cached = self.entries.iter().find(|(key, _)| {
            key.len() == doc.chunks.len()
                && key
                    .iter()
                    .zip(&doc.chunks)
                    .all(|(k, c)| *k == DirectiveKey::of(c))
        });
        if let Some((_, directives)) = cached {
            buf.push_str(directives);
            return;
        }
        let start = buf.len();
        write_directives(buf, doc, config);
        if self.entries.len() < MAX_CACHED_DIRECTIVES {
            let key = doc.chunks.iter().map(DirectiveKey::of).collect();
            self.entries.push((key, buf[start..].to_owned()));
        }
    }
}

fn write_document(
    buf: &mut String,
    doc: &PlannedDoc<'_>,
    config: &MetricsConfig,
    timestamp_ms: i64,
    cache: Option<&mut DirectiveCache>,
) {
    buf.push_str("{\"_aws\":{\"Timestamp\":");
    json::push_i64(buf, timestamp_ms);
    buf.push_str(",\"CloudWatchMetrics\":[");
    match cache {
        Some(cache) => cache.push_directives(buf, doc, config),
        None => write_directives(buf, doc, config),
    }
    write_members(buf, doc, config);
}

/// The directives: one per distinct list of dimension sets, naming the metrics that use it.
fn write_directives(buf: &mut String, doc: &PlannedDoc<'_>, config: &MetricsConfig) {
    // One directive per distinct list of dimension sets.
    let mut done = vec![false; doc.chunks.len()];
    let mut first_directive = true;
    for i in 0..doc.chunks.len() {
        if done[i] {
            continue;
        }
        let sets = doc.chunks[i].series.dimension_sets;
        if !first_directive {
            buf.push(',');
        }
        first_directive = false;
        buf.push_str("{\"Namespace\":");
        json::push_str(buf, &config.namespace);
        buf.push_str(",\"Dimensions\":[");
        for (si, set) in sets.iter().enumerate() {
            if si > 0 {
                buf.push(',');
            }
            buf.push('[');
            let mut first = true;
            for d in set.iter() {
                if !first {
                    buf.push(',');
                }
                first = false;
                json::push_str(buf, d.as_str());
            }
            for (name, _) in &config.default_dimensions {
                if !first {
                    buf.push(',');
                }
                first = false;
                json::push_str(buf, name);
            }
            buf.push(']');
        }
        buf.push_str("],\"Metrics\":[");
        let mut first_metric = true;
        for (chunk, done) in doc.chunks.iter().zip(done.iter_mut()).skip(i) {
            let series = chunk.series;
            if *done || series.dimension_sets != sets {
                continue;
            }
            *done = true;
            if !first_metric {
                buf.push(',');
            }
            first_metric = false;
            buf.push_str("{\"Name\":");
            json::push_str(buf, series.name);
            buf.push_str(",\"Unit\":");
            json::push_str(buf, series.unit.as_str());
            if series.resolution == Resolution::High {
                buf.push_str(",\"StorageResolution\":1");
            }
            buf.push('}');
        }
        buf.push_str("]}");
    }
    buf.push_str("]}");
}

/// The root members: the dimension values, then the metric values.
fn write_members(buf: &mut String, doc: &PlannedDoc<'_>, config: &MetricsConfig) {
    buf.push(',');
    json::push_key(buf, Dimension::Service.as_str());
    json::push_str(buf, &config.service);
    for (name, value) in &config.default_dimensions {
        buf.push(',');
        json::push_key(buf, name);
        json::push_str(buf, value);
    }
    for (d, v) in &doc.dims {
        if *d == Dimension::Service {
            continue;
        }
        buf.push(',');
        json::push_key(buf, d.as_str());
        json::push_str(buf, v);
    }
    for chunk in &doc.chunks {
        buf.push(',');
        json::push_key(buf, chunk.series.name);
        if let [single] = chunk.values {
            json::push_f64(buf, *single);
        } else {
            buf.push('[');
            for (k, v) in chunk.values.iter().enumerate() {
                if k > 0 {
                    buf.push(',');
                }
                json::push_f64(buf, *v);
            }
            buf.push(']');
        }
    }
    buf.push('}');
}

/// The `ColdStart` document: one value, dimensions `service` and `function_name` (plus the
/// default dimensions), alone in its document.
pub(crate) fn cold_start_document(
    config: &MetricsConfig,
    function_name: &str,
    timestamp_ms: i64,
) -> String {
    let def = Metric::ColdStart.def();
    let mut set = MetricSet::new();
    // Cannot fail: the value is finite and the dimensions are the catalogue's.
    let _ = set.add_raw(
        def.name,
        def.unit,
        def.resolution,
        def.dimension_sets,
        1.0,
        &[(Dimension::FunctionName, function_name)],
    );
    set.encode(config, timestamp_ms)
        .into_iter()
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emf;

    const TS: i64 = 1_767_225_600_000;
    static SETS: &[&[Dimension]] = &[&[Dimension::Service, Dimension::Provider]];

    fn config() -> MetricsConfig {
        MetricsConfig::new("Payhook", "webhook-validator").expect("valid config")
    }

    fn parse(docs: &[String]) -> Vec<serde_json::Value> {
        docs.iter()
            .map(|d| {
                let v: serde_json::Value = serde_json::from_str(d).expect("JSON");
                emf::validate(&v).unwrap_or_else(|e| panic!("invalid EMF {e:?}: {d}"));
                v
            })
            .collect()
    }

    #[test]
    fn a_cleared_set_records_as_a_new_one_does() {
        static TWO: &[&[Dimension]] =
            &[&[Dimension::Service, Dimension::Provider, Dimension::Reason]];
        let mut reused = MetricSet::new();
        for (provider, reason) in [("stripe", "none"), ("paypal", "invalid_signature")] {
            let mut fresh = MetricSet::new();
            for set in [&mut reused, &mut fresh] {
                set.add_raw(
                    "Received",
                    Unit::Count,
                    Resolution::Standard,
                    SETS,
                    1.0,
                    &[(Dimension::Provider, provider)],
                )
                .expect("recorded");
                set.add_raw(
                    "Rejected",
                    Unit::Count,
                    Resolution::Standard,
                    TWO,
                    2.0,
                    &[(Dimension::Reason, reason), (Dimension::Provider, provider)],
                )
                .expect("recorded");
            }
            assert_eq!(reused.encode(&config(), TS), fresh.encode(&config(), TS));
            reused.clear();
            assert!(reused.is_empty());
        }
    }

    #[test]
    fn cached_directives_are_the_ones_written_afresh() {
        static OTHER: &[&[Dimension]] = &[
            &[Dimension::Service],
            &[Dimension::Service, Dimension::Reason],
        ];
        let config = config()
            .with_default_dimension("stage", "dev")
            .expect("valid dimension");
        let mut cache = DirectiveCache::default();
        // Several shapes of document, each flushed more than once, in changing order.
        // Metric name, dimension sets, dimension value.
        type Shape<'a> = &'a [(&'static str, &'static [&'static [Dimension]], &'static str)];
        let shapes: [Shape<'_>; 3] = [
            &[("Received", SETS, "stripe"), ("Accepted", SETS, "stripe")],
            &[
                ("Received", SETS, "paypal"),
                ("Rejected", OTHER, "bad_sig"),
                ("Received", SETS, "stripe"),
            ],
            &[("Rejected", OTHER, "bad_sig"), ("Accepted", SETS, "stripe")],
        ];
        for round in 0..3 {
            for shape in shapes.iter().cycle().skip(round).take(3) {
                let mut set = MetricSet::new();
                for (name, sets, value) in *shape {
                    let dim = if *sets == OTHER {
                        Dimension::Reason
                    } else {
                        Dimension::Provider
                    };
                    set.add_raw(
                        name,
                        Unit::Count,
                        Resolution::Standard,
                        sets,
                        1.0,
                        &[(dim, *value)],
                    )
                    .expect("recorded");
                }
                let mut cached = String::new();
                set.encode_lines(&config, TS, &mut cached, &mut cache);
                let afresh: String = set
                    .encode(&config, TS)
                    .into_iter()
                    .map(|doc| doc + "\n")
                    .collect();
                assert_eq!(cached, afresh);
            }
        }
        assert!(!cache.entries.is_empty());
    }

    #[test]
    fn more_than_a_hundred_metrics_split_into_documents_of_at_most_a_hundred() {
        let mut set = MetricSet::new();
        for i in 0..250 {
            let name: &'static str = Box::leak(format!("Synthetic{i:03}").into_boxed_str());
            set.add_raw(
                name,
                Unit::Count,
                Resolution::Standard,
                SETS,
                1.0,
                &[(Dimension::Provider, "stripe")],
            )
            .expect("recorded");
        }
        let docs = parse(&set.encode(&config(), TS));
        let per_doc: Vec<usize> = docs
            .iter()
            .map(|d| {
                d["_aws"]["CloudWatchMetrics"]
                    .as_array()
                    .expect("directives")
                    .iter()
                    .map(|dir| dir["Metrics"].as_array().expect("metrics").len())
                    .sum()
            })
            .collect();
        assert_eq!(per_doc, vec![100, 100, 50]);
    }

    #[test]
    fn high_resolution_metrics_carry_storage_resolution_one() {
        let mut set = MetricSet::new();
        set.add_raw(
            "FastLatency",
            Unit::Milliseconds,
            Resolution::High,
            SETS,
            3.5,
            &[(Dimension::Provider, "square")],
        )
        .expect("recorded");
        let docs = parse(&set.encode(&config(), TS));
        let m = &docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0];
        assert_eq!(m["StorageResolution"], 1);
        assert_eq!(docs[0]["FastLatency"], 3.5);
    }

    #[test]
    fn dimension_values_are_made_acceptable_to_cloudwatch() {
        assert_eq!(sanitize_dimension_value("stripe"), "stripe");
        assert_eq!(sanitize_dimension_value("  "), UNKNOWN_DIMENSION_VALUE);
        assert_eq!(sanitize_dimension_value("zürich"), "z?rich");
        assert_eq!(
            sanitize_dimension_value(&"x".repeat(2000)).len(),
            MAX_DIMENSION_VALUE_LEN
        );
    }
}
