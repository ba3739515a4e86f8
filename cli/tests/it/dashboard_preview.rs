//! `payhook dashboard`: the page drawn from a real local run (`payhook demo`), the same page
//! drawn from CloudWatch (moto) with `--aws`, and that page as headless Chromium renders it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use payhook::CliError;
use payhook::commands::dashboard;
use payhook::commands::demo::{DemoArgs, run_demo};
use payhook_aws::moto::{MotoServer, unique_name};
use payhook_dashboard::{DASHBOARD_FILE, Preview, WidgetSummary, preview_aws, preview_local};

/// Widgets the demo cannot feed, and why. Every other metric, log and alarm widget must draw.
const NOT_FED_BY_THE_DEMO: &[(&str, &str)] = &[
    (
        "Duplicate events absorbed",
        "the bus delivers each event once in the demo: nothing to absorb",
    ),
    (
        "DynamoDB throttle events",
        "the local status store is in memory: no DynamoDB call",
    ),
    (
        "DynamoDB request latency (ms, average)",
        "the local status store is in memory: no DynamoDB call",
    ),
    (
        "Queue lag p50 / p99 (ms, SentTimestamp to processing)",
        "the processors do not emit QueueLag yet",
    ),
    (
        "API requests per key per day (daily quota drawn)",
        "a metric filter on API Gateway's access log: the local front door writes none",
    ),
];

/// Widgets whose alarm threshold must be drawn, and the alarm kind behind it.
const THRESHOLDS: &[(&str, &str)] = &[
    ("Signature failures per provider", "signature-failures"),
    ("API Gateway 5XX rate (%)", "api-5xx-rate"),
    (
        "API Gateway 4XX rate (%) and quota refusals (429)",
        "api-4xx-rate",
    ),
    ("Queue depth (visible messages)", "queue-depth"),
    ("Age of oldest message (s)", "queue-age"),
    ("DLQ depth (visible messages)", "dlq-not-empty"),
    ("Error rate (%)", "lambda-error-rate"),
    ("Throttles", "lambda-throttles"),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    crate::support::scratch_in("dashboard_preview", name)
}

struct DemoRun {
    run_dir: PathBuf,
    preview: Preview,
    page: PathBuf,
}

/// One `payhook demo` for the whole test binary, and its page.
fn demo() -> &'static DemoRun {
    static DEMO: OnceLock<DemoRun> = OnceLock::new();
    DEMO.get_or_init(|| {
        let run_dir = scratch("demo");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let report = runtime
            .block_on(run_demo(&DemoArgs {
                run_dir: Some(run_dir.clone()),
                rules_dir: workspace().join("rules"),
                timeout: 60,
                aws_endpoint: None,
            }))
            .unwrap_or_else(|e| panic!("payhook demo: {e}"));
        drop(runtime);
        assert!(report.balanced(), "the demo's books: {report:?}");
        let preview = preview_local(
            &workspace().join("dashboards"),
            &workspace().join("alarms"),
            &run_dir,
            None,
        )
        .unwrap_or_else(|e| panic!("render: {e}"));
        let page = run_dir.join(DASHBOARD_FILE);
        std::fs::write(&page, &preview.html).unwrap_or_else(|e| panic!("{e}"));
        DemoRun {
            run_dir,
            preview,
            page,
        }
    })
}

fn widget<'a>(preview: &'a Preview, title: &str) -> &'a WidgetSummary {
    preview
        .widgets
        .iter()
        .find(|w| w.title == title)
        .unwrap_or_else(|| panic!("no widget titled {title:?}"))
}

fn expected_without_data(title: &str) -> bool {
    NOT_FED_BY_THE_DEMO.iter().any(|(t, _)| *t == title)
}

/// The value of attribute `name` in the element's opening tag `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')?;
    Some(&tag[start..start + end])
}

/// Each widget element of a page or DOM dump: (opening tag, the markup up to the next widget).
fn widget_elements(html: &str) -> Vec<(&str, &str)> {
    let starts: Vec<usize> = html
        .match_indices("<div class=\"widget ")
        .map(|(i, _)| i)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| {
            let end = starts.get(n + 1).copied().unwrap_or(html.len());
            let tag_end = html[s..].find('>').map_or(end, |e| s + e + 1);
            (&html[s..tag_end], &html[s..end])
        })
        .collect()
}

#[test]
fn every_widget_the_demo_run_can_feed_draws_data() {
    let run = demo();
    let preview = &run.preview;
    let missing: Vec<String> = preview
        .data_widgets()
        .filter(|w| !w.has_data && !expected_without_data(&w.title))
        .map(|w| format!("{} ({}): {:?}", w.title, w.kind, w.notes))
        .collect();
    assert!(missing.is_empty(), "widgets without data: {missing:#?}");
    // The page says the same as the summary, widget by widget.
    let elements = widget_elements(&preview.html);
    assert_eq!(elements.len(), preview.widgets.len());
    for ((tag, _), w) in elements.iter().zip(&preview.widgets) {
        assert_eq!(
            attr(tag, "data-widget-index"),
            Some(w.index.to_string().as_str())
        );
        assert_eq!(
            attr(tag, "data-has-data"),
            Some(if w.has_data { "true" } else { "false" })
        );
        assert_eq!(
            attr(tag, "data-series"),
            Some(w.series.to_string().as_str())
        );
    }
    assert!(preview.with_data() + NOT_FED_BY_THE_DEMO.len() >= preview.total());
    println!(
        "{} of {} widgets drew data on {}",
        preview.with_data(),
        preview.total(),
        run.run_dir.display()
    );
}

#[test]
fn metric_widgets_draw_one_series_per_metric_or_search_result() {
    let preview = &demo().preview;
    assert_eq!(
        widget(preview, "Webhooks received and accepted per provider").series,
        6
    );
    // The local stack sweeps once at start: the sweeper cold-starts too.
    assert_eq!(widget(preview, "Cold starts per function").series, 6);
    // SEARCH: one series per matched metric (reasons × providers in the run).
    assert!(widget(preview, "Webhooks rejected by reason").series >= 2);
    assert!(widget(preview, "Matched events per rule").series >= 5);
    assert!(widget(preview, "Payments by tier").series >= 3);
    // Hidden inputs of metric math are not drawn: one error rate per function.
    assert_eq!(widget(preview, "Error rate (%)").series, 6);
    assert_eq!(widget(preview, "API Gateway 5XX rate (%)").series, 1);
}

#[test]
fn alarm_thresholds_are_drawn_on_the_widgets_showing_their_metric() {
    let preview = &demo().preview;
    let elements = widget_elements(&preview.html);
    for (title, kind) in THRESHOLDS {
        let w = widget(preview, title);
        assert!(w.thresholds >= 1, "{title}: no threshold line");
        let (_, markup) = elements[preview
            .widgets
            .iter()
            .position(|x| x.title == *title)
            .unwrap_or_default()];
        let line = markup
            .match_indices("class=\"threshold\"")
            .map(|(i, _)| &markup[i..markup[i..].find("/>").map_or(markup.len(), |e| i + e)])
            .find(|l| attr(&format!(" {l}"), "data-alarms").is_some_and(|a| a.contains(kind)));
        assert!(line.is_some(), "{title}: no line for alarm {kind}");
    }
    // A widget of raw counts gets no percentage threshold.
    assert_eq!(
        widget(preview, "API Gateway requests, 4XX and 5XX").thresholds,
        0
    );
}

#[test]
fn alarm_widget_computes_states_from_the_local_metrics() {
    let preview = &demo().preview;
    let html = &preview.html;
    let state_of = |alarm: &str| {
        let key = format!("data-alarm=\"{alarm}\"");
        let i = html
            .find(&key)
            .unwrap_or_else(|| panic!("alarm {alarm} is not on the page"));
        attr(&html[i - 1..], "data-state").map(str::to_owned)
    };
    // The demo's poison message ends in the stripe DLQ.
    assert_eq!(
        state_of("payhook-local-dlq-not-empty-stripe").as_deref(),
        Some("ALARM")
    );
    assert_eq!(
        state_of("payhook-local-dlq-not-empty-paypal").as_deref(),
        Some("OK")
    );
    // One bad signature per provider is under the spike threshold of 5.
    assert_eq!(
        state_of("payhook-local-signature-failures-stripe").as_deref(),
        Some("OK")
    );
    assert_eq!(
        state_of("payhook-local-queue-depth-square").as_deref(),
        Some("OK")
    );
    let alarms = widget(preview, "Alarms (payhook-local)");
    assert!(alarms.has_data);
    assert!(alarms.series >= 30, "{} alarms", alarms.series);
}

#[test]
fn log_widgets_run_their_insights_query_over_the_captured_logs() {
    let preview = &demo().preview;
    let errors = widget(preview, "Recent errors (all functions)");
    assert!(errors.series >= 1);
    let api = widget(preview, "API Gateway: failed requests");
    // Three bad signatures (401) and the request without the API key (403).
    assert_eq!(api.series, 4, "{:?}", api.notes);
    assert!(
        preview
            .html
            .contains("last attempt failed; the message goes to the DLQ")
    );
}

#[test]
fn the_page_is_self_contained() {
    let html = &demo().preview.html;
    for needle in ["<script", "<link", "@import", "src=\"http", "url(http"] {
        assert!(!html.contains(needle), "the page loads something: {needle}");
    }
    assert!(html.contains("<svg"));
}

/// `payhook dashboard`'s arguments, parsed as the binary parses them.
#[derive(Debug, clap::Parser)]
struct DashboardCommand {
    #[command(flatten)]
    args: dashboard::DashboardArgs,
}

#[test]
fn the_command_writes_the_page_into_the_run_directory() {
    let run = demo();
    let copy = scratch("command");
    for file in ["metrics.jsonl", "logs.jsonl", "xray.jsonl", "summary.json"] {
        std::fs::copy(run.run_dir.join(file), copy.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let dashboards = workspace().join("dashboards");
    let alarms = workspace().join("alarms");
    let parsed = <DashboardCommand as clap::Parser>::try_parse_from([
        "dashboard".as_ref(),
        "--run-dir".as_ref(),
        copy.as_os_str(),
        "--dashboards".as_ref(),
        dashboards.as_os_str(),
        "--alarms".as_ref(),
        alarms.as_os_str(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let code = runtime
        .block_on(dashboard::run(parsed.args))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0);
    let page = std::fs::read_to_string(copy.join(DASHBOARD_FILE)).unwrap_or_else(|e| panic!("{e}"));
    assert!(page.contains("data-widget-index=\"0\""));
    // --aws-endpoint means nothing without --aws.
    let err = <DashboardCommand as clap::Parser>::try_parse_from([
        "dashboard",
        "--run-dir",
        "x",
        "--aws-endpoint",
        "http://127.0.0.1:1",
    ]);
    assert!(err.is_err());
}

#[test]
fn a_directory_without_a_run_is_a_usage_error() {
    let empty = scratch("empty");
    let err = dashboard::render_local(
        &workspace().join("dashboards"),
        &workspace().join("alarms"),
        &empty,
    );
    assert!(matches!(err, Err(CliError::Usage(m)) if m.contains("metrics.jsonl")));
}

/// Dimensions sorted by name: moto matches a query's dimensions against a metric's only when
/// both come in the same order (its `Dimension.__lt__` cannot sort them); CloudWatch ignores
/// the order, and the preview asks in name order.
fn dims(pairs: &[(&str, &str)]) -> Vec<Dimension> {
    let mut pairs = pairs.to_vec();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| Dimension::builder().name(*n).value(*v).build())
        .collect()
}

fn datum(name: &str, pairs: &[(&str, &str)], value: f64, at: i64) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(name)
        .set_dimensions(Some(dims(pairs)))
        .value(value)
        .unit(StandardUnit::Count)
        .timestamp(DateTime::from_secs(at))
        .build()
}

/// Puts each namespace's data points into CloudWatch, failing the test on an error.
async fn put_metric_data<'a>(
    client: &aws_sdk_cloudwatch::Client,
    puts: impl IntoIterator<Item = (&'a str, Vec<MetricDatum>)>,
) {
    for (namespace, data) in puts {
        client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PutMetricData {namespace}: {}",
                    aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
                )
            });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_preview_draws_the_metrics_cloudwatch_holds() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let config = moto.sdk_config().await;
    let client = aws_sdk_cloudwatch::Client::new(&config);
    let stage = unique_name("dash");
    let prefix = format!("payhook-{stage}");
    let at = payhook_devkit::unix_now() - 120;
    let queue = format!("{prefix}-stripe.fifo");
    let validator = format!("{prefix}-webhook-validator");
    let puts = [
        (
            "Payhook",
            vec![
                datum(
                    "WebhooksReceived",
                    &[("service", "webhook-validator"), ("provider", "stripe")],
                    5.0,
                    at,
                ),
                datum(
                    "WebhooksAccepted",
                    &[("service", "webhook-validator"), ("provider", "stripe")],
                    4.0,
                    at,
                ),
                datum(
                    "WebhooksRejected",
                    &[
                        ("service", "webhook-validator"),
                        ("provider", "stripe"),
                        ("reason", "no_matching_signature"),
                    ],
                    1.0,
                    at,
                ),
            ],
        ),
        (
            "AWS/SQS",
            vec![datum(
                "ApproximateNumberOfMessagesVisible",
                &[("QueueName", &queue)],
                3.0,
                at,
            )],
        ),
        (
            "AWS/Lambda",
            vec![
                datum("Invocations", &[("FunctionName", &validator)], 10.0, at),
                datum("Errors", &[("FunctionName", &validator)], 1.0, at),
            ],
        ),
    ];
    put_metric_data(&client, puts).await;

    let preview = preview_aws(
        &config,
        &workspace().join("dashboards"),
        &workspace().join("alarms"),
        &stage,
        Some(30),
    )
    .await
    .unwrap_or_else(|e| panic!("render: {e}"));

    assert!(preview.warnings.is_empty(), "{:?}", preview.warnings);
    for title in [
        "Webhooks received and accepted per provider",
        "Webhooks rejected by reason",
        "Queue depth (visible messages)",
        "Invocations",
        "Error rate (%)",
    ] {
        let w = widget(&preview, title);
        assert!(w.has_data, "{title}: {:?}", w.notes);
    }
    assert_eq!(
        widget(&preview, "Webhooks received and accepted per provider").series,
        2
    );
    assert!(!widget(&preview, "DynamoDB throttle events").has_data);
    assert!(widget(&preview, "Queue depth (visible messages)").thresholds >= 1);
    assert!(
        preview
            .html
            .contains(&format!("payhook-{stage}-queue-depth-stripe"))
    );
    assert!(preview.with_data() >= 5);
}

/// Debian's `chromium`, if installed.
fn chromium() -> Option<PathBuf> {
    let candidates = [PathBuf::from("/usr/bin/chromium")];
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("chromium"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    candidates.into_iter().chain(on_path).find(|p| p.is_file())
}

/// Runs Chromium headless on `page` with `extra` arguments; its standard output.
fn run_chromium(chromium: &Path, page: &Path, extra: &[String]) -> String {
    let profile = scratch("chromium-profile");
    let url = url::Url::from_file_path(page)
        .map(|u| u.to_string())
        .unwrap_or_else(|()| panic!("{} is not absolute", page.display()));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", chromium.display()));
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(s) = stdout.as_mut() {
            let _ = std::io::Read::read_to_string(s, &mut out);
        }
        out
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 120 s");
            }
        }
    }
    reader.join().unwrap_or_default()
}

#[test]
fn headless_chromium_shows_every_fed_widget_with_data() {
    let Some(chromium) = chromium() else {
        payhook_testkit::skip::skip_test("chromium not found (apt-get install -y chromium)");
        return;
    };
    let run = demo();
    let dom = run_chromium(&chromium, &run.page, &["--dump-dom".to_owned()]);
    let elements = widget_elements(&dom);
    assert_eq!(
        elements.len(),
        run.preview.widgets.len(),
        "widgets in the DOM chromium built"
    );
    for (tag, markup) in elements {
        let title = attr(tag, "data-title").unwrap_or_default();
        let kind = attr(tag, "data-widget-type").unwrap_or_default();
        let has_data = attr(tag, "data-has-data");
        if kind == "text" || expected_without_data(title) {
            continue;
        }
        assert_eq!(has_data, Some("true"), "{kind} widget {title:?} in the DOM");
        if kind == "metric" {
            assert!(
                markup.contains("<svg") && markup.contains("<path class=\"series"),
                "metric widget {title:?}: no SVG series path"
            );
        }
    }
    assert!(dom.contains("class=\"threshold\""));
}
