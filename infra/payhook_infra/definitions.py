"""Loading and checking the repository's JSON-as-code: `rules/`, `alarms/`, `dashboards/`.

Pulumi deploys exactly what these files say. Each loader checks the structure it relies on
and fails with the file and JSON path of the first problem, before any resource is
registered; `payhook check` performs the deeper cross-checks (metric catalogue, runbooks).
The formats are documented in `alarms/README.md`, `dashboards/README.md` and
`rules/README.md`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Mapping, Optional

from . import placeholders
from .settings import FUNCTION_NAMES, PROVIDERS


class DefinitionError(ValueError):
    """A JSON definition file is invalid; the message starts with the file and JSON path."""


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"{path.name}: not valid JSON: {exc}") from exc


def _json_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def _require(condition: bool, source: str, path: str, message: str) -> None:
    if not condition:
        raise DefinitionError(f"{source}: {path}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------
# rules/*.json
# --------------------------------------------------------------------------------------

#: The logical bus name rule files use; the program maps it to the deployed bus.
RULES_EVENT_BUS = "payment-events"
#: The logical target DLQ name rule files use.
RULES_DEAD_LETTER_QUEUE = "events-dlq"
_EVENTBRIDGE_NAME = re.compile(r"^[\.\-_A-Za-z0-9]{1,64}$")


@dataclasses.dataclass(frozen=True)
class RuleTarget:
    id: str
    function: str
    #: `None`: EventBridge's default (185 attempts over 24 hours).
    maximum_retry_attempts: Optional[int]
    maximum_event_age_seconds: Optional[int]
    #: `None`: no target DLQ.
    dead_letter_queue: Optional[str]


@dataclasses.dataclass(frozen=True)
class RuleDefinition:
    name: str
    description: str
    state: str
    event_pattern: dict[str, Any]
    targets: tuple[RuleTarget, ...]
    source_file: str


_RULE_FIELDS = {"name", "description", "event_bus", "state", "event_pattern", "targets"}
_TARGET_FIELDS = {"id", "function", "retry_policy", "dead_letter_queue"}
_RETRY_FIELDS = {"maximum_retry_attempts", "maximum_event_age_seconds"}


def _unknown_fields(raw: dict[str, Any], known: set[str], source: str, path: str) -> None:
    unknown = sorted(set(raw) - known)
    _require(not unknown, source, path, f"unknown fields {unknown}")


def _rule_target(raw: Any, source: str, path: str) -> RuleTarget:
    _require(isinstance(raw, dict), source, path, "a target must be an object")
    _unknown_fields(raw, _TARGET_FIELDS, source, path)
    target_id = raw.get("id")
    _require(
        isinstance(target_id, str) and bool(_EVENTBRIDGE_NAME.match(target_id)),
        source,
        f"{path}.id",
        "must be 1-64 characters of A-Z a-z 0-9 . - _",
    )
    function = raw.get("function")
    _require(
        function in FUNCTION_NAMES,
        source,
        f"{path}.function",
        f"must name a deployed function, one of {list(FUNCTION_NAMES)}",
    )
    attempts = age = None
    if "retry_policy" in raw:
        retry = raw["retry_policy"]
        _require(isinstance(retry, dict), source, f"{path}.retry_policy", "must be an object")
        _unknown_fields(retry, _RETRY_FIELDS, source, f"{path}.retry_policy")
        attempts = retry.get("maximum_retry_attempts")
        _require(
            _is_int(attempts) and 0 <= attempts <= 185,
            source,
            f"{path}.retry_policy.maximum_retry_attempts",
            "must be an integer 0-185 (an EventBridge limit)",
        )
        age = retry.get("maximum_event_age_seconds")
        _require(
            _is_int(age) and 60 <= age <= 86400,
            source,
            f"{path}.retry_policy.maximum_event_age_seconds",
            "must be an integer 60-86400 (an EventBridge limit)",
        )
    dlq = raw.get("dead_letter_queue")
    _require(
        dlq is None or dlq == RULES_DEAD_LETTER_QUEUE,
        source,
        f"{path}.dead_letter_queue",
        f"must be {RULES_DEAD_LETTER_QUEUE!r}, the only target DLQ the stack creates",
    )
    return RuleTarget(target_id, function, attempts, age, dlq)


def parse_rule(raw: Any, source: str) -> RuleDefinition:
    """Check one rule file's content (format in rules/README.md) and return it typed."""
    _require(isinstance(raw, dict), source, "$", "a rule file must hold one JSON object")
    _unknown_fields(raw, _RULE_FIELDS, source, "$")
    name = raw.get("name")
    _require(
        isinstance(name, str) and bool(_EVENTBRIDGE_NAME.match(name)),
        source,
        "$.name",
        "must be 1-64 characters of A-Z a-z 0-9 . - _ (an EventBridge rule name)",
    )
    stem = source.rsplit("/", 1)[-1].removesuffix(".json")
    _require(name == stem, source, "$.name", f"must equal the file name {stem!r}")
    description = raw.get("description")
    _require(
        isinstance(description, str) and len(description) <= 512,
        source,
        "$.description",
        "must be a string of at most 512 characters",
    )
    _require(
        raw.get("event_bus") == RULES_EVENT_BUS,
        source,
        "$.event_bus",
        f"must be {RULES_EVENT_BUS!r}",
    )
    state = raw.get("state")
    _require(state in ("ENABLED", "DISABLED"), source, "$.state", "must be ENABLED or DISABLED")
    pattern = raw.get("event_pattern")
    _require(
        isinstance(pattern, dict) and bool(pattern),
        source,
        "$.event_pattern",
        "must be a non-empty object",
    )
    _require(
        len(json.dumps(pattern, separators=(",", ":"))) <= 2048,
        source,
        "$.event_pattern",
        "must be at most 2048 characters as compact JSON (EventBridge's default quota)",
    )
    targets = raw.get("targets")
    _require(
        isinstance(targets, list) and 1 <= len(targets) <= 5,
        source,
        "$.targets",
        "must be a list of 1-5 targets (an EventBridge limit)",
    )
    parsed = tuple(_rule_target(t, source, f"$.targets[{i}]") for i, t in enumerate(targets))
    ids = [t.id for t in parsed]
    _require(len(set(ids)) == len(ids), source, "$.targets", "target ids must be unique")
    return RuleDefinition(name, description, state, pattern, parsed, source)


def load_rules(rules_dir: Path) -> list[RuleDefinition]:
    """Every `rules/*.json`, sorted by file name; rule names must be unique."""
    rules = [parse_rule(_load_json(path), path.name) for path in _json_files(rules_dir)]
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.name in seen:
            raise DefinitionError(
                f"{rule.source_file}: $.name: rule {rule.name!r} is also defined in "
                f"{seen[rule.name]}"
            )
        seen[rule.name] = rule.source_file
    return rules


# --------------------------------------------------------------------------------------
# alarms/*.json
# --------------------------------------------------------------------------------------

#: Placeholders every alarm may use (from `placeholders.json`).
ALARM_GLOBAL_PLACEHOLDERS = frozenset(placeholders.vocabulary()["alarm"]["global"])
#: What one alarm file is instantiated for, and the extra placeholders each scope provides
#: (from `placeholders.json`, in its order).
ALARM_SCOPES: Mapping[str, frozenset[str]] = {
    scope["scope"]: frozenset(scope["placeholders"])
    for scope in placeholders.vocabulary()["alarm"]["scopes"]
}
SEVERITIES = ("critical", "high", "warning")
COMPARISONS = (
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
BASIC_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d{1,2})?|100)$")
_QUERY_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")
_KIND = re.compile(r"^[a-z][a-z0-9-]*$")
MAX_DESCRIPTION = 1024
MAX_SUMMARY = 400


@dataclasses.dataclass(frozen=True)
class AlarmKind:
    """One `alarms/<kind>.json`: a template applied to every resource of its scope."""

    kind: str
    title: str
    scope: str
    severity: str
    summary: str
    runbook: str
    metric: Optional[dict[str, Any]]
    metrics: Optional[list[dict[str, Any]]]
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str
    source_file: str

    @property
    def templated(self) -> dict[str, Any]:
        """The parts of the file that may hold placeholders."""
        return {"metric": self.metric, "metrics": self.metrics, "summary": self.summary}


def _check_stat(stat: Any, source: str, path: str) -> None:
    _require(
        isinstance(stat, str) and (stat in BASIC_STATISTICS or bool(_PERCENTILE.match(stat))),
        source,
        path,
        f"must be one of {list(BASIC_STATISTICS)} or a percentile such as p99",
    )


def _check_period(period: Any, source: str, path: str) -> None:
    _require(
        _is_int(period) and period > 0 and (period in (10, 20, 30) or period % 60 == 0),
        source,
        path,
        "must be 10, 20, 30 or a multiple of 60 seconds",
    )


def _check_metric(metric: Any, source: str, path: str) -> None:
    _require(isinstance(metric, dict), source, path, "must be an object")
    for key in ("namespace", "metric_name"):
        _require(
            isinstance(metric.get(key), str) and bool(metric.get(key)),
            source,
            f"{path}.{key}",
            "must be a non-empty string",
        )
    _require(
        not metric["namespace"].startswith(":"),
        source,
        f"{path}.namespace",
        "may not start with ':'",
    )
    dimensions = metric.get("dimensions", {})
    _require(
        isinstance(dimensions, dict)
        and len(dimensions) <= 30
        and all(isinstance(v, str) and v for v in dimensions.values()),
        source,
        f"{path}.dimensions",
        "must be an object of at most 30 non-empty string values",
    )
    _check_stat(metric.get("stat"), source, f"{path}.stat")
    _check_period(metric.get("period"), source, f"{path}.period")
    unknown = set(metric) - {"namespace", "metric_name", "dimensions", "stat", "period", "unit"}
    _require(not unknown, source, path, f"unknown fields {sorted(unknown)}")


def _check_metrics(queries: Any, source: str) -> None:
    _require(
        isinstance(queries, list) and 1 <= len(queries) <= 20,
        source,
        "$.metrics",
        "must be a list of 1-20 queries",
    )
    ids: list[str] = []
    stats = expressions = returned = 0
    for index, query in enumerate(queries):
        path = f"$.metrics[{index}]"
        _require(isinstance(query, dict), source, path, "must be an object")
        query_id = query.get("id")
        _require(
            isinstance(query_id, str) and bool(_QUERY_ID.match(query_id)),
            source,
            f"{path}.id",
            "must start with a lower-case letter and hold only letters, digits and _",
        )
        ids.append(query_id)
        has_metric, has_expression = "metric" in query, "expression" in query
        _require(
            has_metric != has_expression,
            source,
            path,
            "must have exactly one of 'metric' and 'expression'",
        )
        if has_metric:
            stats += 1
            _check_metric(query["metric"], source, f"{path}.metric")
        else:
            expressions += 1
            expression = query["expression"]
            _require(
                isinstance(expression, str) and 1 <= len(expression) <= 2048,
                source,
                f"{path}.expression",
                "must be a string of 1-2048 characters",
            )
            _require(
                "SEARCH(" not in expression.upper(),
                source,
                f"{path}.expression",
                "alarms cannot use SEARCH (the alarm needs one time series)",
            )
        return_data = query.get("return_data", False)
        _require(isinstance(return_data, bool), source, f"{path}.return_data", "must be a boolean")
        returned += int(return_data)
        unknown = set(query) - {"id", "metric", "expression", "label", "return_data", "period"}
        _require(not unknown, source, path, f"unknown fields {sorted(unknown)}")
    _require(len(set(ids)) == len(ids), source, "$.metrics", "query ids must be unique")
    _require(returned == 1, source, "$.metrics", "exactly one query must have return_data true")
    _require(stats <= 10 and expressions <= 10, source, "$.metrics", "at most 10 of each kind")


def parse_alarm(raw: Any, source: str, runbooks_dir: Optional[Path] = None) -> AlarmKind:
    """Check one alarm file's content (format in alarms/README.md) and return it typed."""
    _require(isinstance(raw, dict), source, "$", "an alarm file must hold one JSON object")
    kind = raw.get("kind")
    _require(
        isinstance(kind, str) and bool(_KIND.match(kind)),
        source,
        "$.kind",
        "must be lower-case kebab-case",
    )
    stem = source.rsplit("/", 1)[-1].removesuffix(".json")
    _require(kind == stem, source, "$.kind", f"must equal the file name {stem!r}")
    for key in ("title", "summary", "runbook"):
        _require(
            isinstance(raw.get(key), str) and bool(raw.get(key)),
            source,
            f"$.{key}",
            "must be a non-empty string",
        )
    _require(
        len(raw["summary"]) <= MAX_SUMMARY,
        source,
        "$.summary",
        f"must be at most {MAX_SUMMARY} characters (the description limit is {MAX_DESCRIPTION})",
    )
    _require(
        raw["runbook"] == f"{kind}.md",
        source,
        "$.runbook",
        f"must be {kind}.md, the runbook of this alarm kind",
    )
    if runbooks_dir is not None:
        _require(
            (runbooks_dir / raw["runbook"]).is_file(),
            source,
            "$.runbook",
            f"runbooks/{raw['runbook']} does not exist",
        )
    scope = raw.get("scope")
    _require(scope in ALARM_SCOPES, source, "$.scope", f"must be one of {list(ALARM_SCOPES)}")
    severity = raw.get("severity")
    _require(severity in SEVERITIES, source, "$.severity", f"must be one of {list(SEVERITIES)}")

    has_metric, has_metrics = "metric" in raw, "metrics" in raw
    _require(
        has_metric != has_metrics,
        source,
        "$",
        "must have exactly one of 'metric' (one metric) and 'metrics' (metric math)",
    )
    if has_metric:
        _check_metric(raw["metric"], source, "$.metric")
        period = raw["metric"]["period"]
    else:
        _check_metrics(raw["metrics"], source)
        period = next(
            (q["metric"]["period"] for q in raw["metrics"] if "metric" in q),
            raw["metrics"][0].get("period", 60),
        )

    threshold = raw.get("threshold")
    _require(
        isinstance(threshold, (int, float)) and not isinstance(threshold, bool),
        source,
        "$.threshold",
        "must be a number",
    )
    comparison = raw.get("comparison")
    _require(comparison in COMPARISONS, source, "$.comparison", f"must be one of {list(COMPARISONS)}")
    evaluation = raw.get("evaluation_periods")
    _require(_is_int(evaluation) and evaluation >= 1, source, "$.evaluation_periods", "must be ≥ 1")
    datapoints = raw.get("datapoints_to_alarm", evaluation)
    _require(
        _is_int(datapoints) and 1 <= datapoints <= evaluation,
        source,
        "$.datapoints_to_alarm",
        "must be between 1 and evaluation_periods",
    )
    limit = 86_400 if period < 3600 else 604_800
    _require(
        period * evaluation <= limit,
        source,
        "$.evaluation_periods",
        f"period × evaluation_periods must be ≤ {limit} s",
    )
    missing = raw.get("treat_missing_data")
    _require(
        missing in MISSING_DATA,
        source,
        "$.treat_missing_data",
        f"must be one of {list(MISSING_DATA)} (choose deliberately)",
    )
    known = {
        "kind", "title", "scope", "severity", "summary", "runbook", "metric", "metrics",
        "threshold", "comparison", "evaluation_periods", "datapoints_to_alarm",
        "treat_missing_data", "$comment",
    }
    unknown = set(raw) - known
    _require(not unknown, source, "$", f"unknown fields {sorted(unknown)}")

    allowed = ALARM_GLOBAL_PLACEHOLDERS | ALARM_SCOPES[scope]
    document = {"summary": raw["summary"], "metric": raw.get("metric"), "metrics": raw.get("metrics")}
    for bad_path, bad_text in placeholders.malformed_placeholders(document):
        raise DefinitionError(f"{source}: {bad_path}: malformed placeholder {bad_text!r}")
    used = placeholders.placeholders_in(document)
    _require(
        used <= allowed,
        source,
        "$",
        f"placeholders {sorted(used - allowed)} are not available for scope {scope!r}; "
        f"available: {sorted(allowed)}",
    )
    return AlarmKind(
        kind=kind,
        title=raw["title"],
        scope=scope,
        severity=severity,
        summary=raw["summary"],
        runbook=raw["runbook"],
        metric=raw.get("metric"),
        metrics=raw.get("metrics"),
        threshold=float(threshold),
        comparison=comparison,
        evaluation_periods=evaluation,
        datapoints_to_alarm=datapoints,
        treat_missing_data=missing,
        source_file=source,
    )


def load_alarm_kinds(alarms_dir: Path, runbooks_dir: Optional[Path] = None) -> list[AlarmKind]:
    """Every `alarms/*.json`, sorted by file name."""
    return [
        parse_alarm(_load_json(path), path.name, runbooks_dir) for path in _json_files(alarms_dir)
    ]


def _metric_args(metric: Mapping[str, Any]) -> dict[str, Any]:
    args = {
        "namespace": metric["namespace"],
        "metric_name": metric["metric_name"],
        "dimensions": dict(metric.get("dimensions", {})),
        "period": metric["period"],
        "stat": metric["stat"],
    }
    if "unit" in metric:
        args["unit"] = metric["unit"]
    return args


def render_alarm(
    alarm: AlarmKind,
    *,
    name: str,
    values: Mapping[str, str],
    runbook_url: str,
) -> dict[str, Any]:
    """The `aws.cloudwatch.MetricAlarm` arguments (without actions) for one resource.

    `values` must provide every placeholder the alarm's scope allows. The description is
    `[SEVERITY] <summary> Runbook: <url>` and is checked against the 1024-character limit.
    """
    filled = placeholders.fill(alarm.templated, values, source=alarm.source_file)
    description = f"[{alarm.severity.upper()}] {filled['summary']} Runbook: {runbook_url}"
    if len(description) > MAX_DESCRIPTION:
        raise DefinitionError(
            f"{alarm.source_file}: $.summary: the description for {name} is "
            f"{len(description)} characters; the limit is {MAX_DESCRIPTION}"
        )
    args: dict[str, Any] = {
        "name": name,
        "alarm_description": description,
        "comparison_operator": alarm.comparison,
        "threshold": alarm.threshold,
        "evaluation_periods": alarm.evaluation_periods,
        "datapoints_to_alarm": alarm.datapoints_to_alarm,
        "treat_missing_data": alarm.treat_missing_data,
    }
    if filled["metric"] is not None:
        metric = _metric_args(filled["metric"])
        stat = metric.pop("stat")
        args.update(
            namespace=metric["namespace"],
            metric_name=metric["metric_name"],
            dimensions=metric["dimensions"],
            period=metric["period"],
        )
        if "unit" in metric:
            args["unit"] = metric["unit"]
        if stat in BASIC_STATISTICS:
            args["statistic"] = stat
        else:
            args["extended_statistic"] = stat
    else:
        queries = []
        for query in filled["metrics"]:
            out: dict[str, Any] = {"id": query["id"], "return_data": query.get("return_data", False)}
            if "label" in query:
                out["label"] = query["label"]
            if "metric" in query:
                out["metric"] = _metric_args(query["metric"])
            else:
                out["expression"] = query["expression"]
                if "period" in query:
                    out["period"] = query["period"]
            queries.append(out)
        args["metric_queries"] = queries
    return args


# --------------------------------------------------------------------------------------
# dashboards/*.json
# --------------------------------------------------------------------------------------

def dashboard_placeholders() -> frozenset[str]:
    """String placeholders a dashboard may use (see dashboards/README.md): those of
    `placeholders.json`, with `{provider}` and `{function}` standing for each provider and
    each pipeline function."""
    dashboard = placeholders.vocabulary()["dashboard"]
    names = set(dashboard["strings"])
    for p in PROVIDERS:
        names.update(n.replace("{provider}", p) for n in dashboard["per_provider"])
    for f in FUNCTION_NAMES:
        names.update(n.replace("{function}", f) for n in dashboard["per_function"])
    return frozenset(names)


#: List placeholders a dashboard may use as whole array elements (from `placeholders.json`).
DASHBOARD_LIST_PLACEHOLDERS = frozenset(placeholders.vocabulary()["dashboard"]["lists"])
_DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
WIDGET_TYPES = ("metric", "text", "log", "alarm", "explorer", "custom")


@dataclasses.dataclass(frozen=True)
class DashboardDefinition:
    stem: str
    body: dict[str, Any]
    source_file: str


def parse_dashboard(raw: Any, source: str) -> DashboardDefinition:
    """Check the parts of a dashboard body the program relies on."""
    _require(isinstance(raw, dict), source, "$", "a dashboard body must be a JSON object")
    widgets = raw.get("widgets")
    _require(
        isinstance(widgets, list) and len(widgets) <= 500,
        source,
        "$.widgets",
        "must be a list of at most 500 widgets",
    )
    for index, widget in enumerate(widgets):
        path = f"$.widgets[{index}]"
        _require(isinstance(widget, dict), source, path, "must be an object")
        _require(
            widget.get("type") in WIDGET_TYPES,
            source,
            f"{path}.type",
            f"must be one of {list(WIDGET_TYPES)}",
        )
        _require(
            isinstance(widget.get("properties"), dict),
            source,
            f"{path}.properties",
            "must be an object",
        )
    for bad_path, bad_text in placeholders.malformed_placeholders(raw):
        raise DefinitionError(f"{source}: {bad_path}: malformed placeholder {bad_text!r}")
    used = placeholders.placeholders_in(raw)
    allowed = dashboard_placeholders() | DASHBOARD_LIST_PLACEHOLDERS
    _require(
        used <= allowed,
        source,
        "$",
        f"unknown placeholders {sorted(used - allowed)}; see dashboards/README.md",
    )
    stem = source.rsplit("/", 1)[-1].removesuffix(".json")
    _require(
        bool(_DASHBOARD_NAME.match(stem)),
        source,
        "$",
        "the file name must be letters, digits, - and _ (it becomes the dashboard name)",
    )
    return DashboardDefinition(stem, raw, source)


def load_dashboards(dashboards_dir: Path) -> list[DashboardDefinition]:
    """Every `dashboards/*.json`, sorted by file name."""
    return [parse_dashboard(_load_json(p), p.name) for p in _json_files(dashboards_dir)]
