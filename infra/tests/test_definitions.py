"""The JSON-as-code files themselves: they parse, follow their documented formats, pair up
with runbooks, and use only catalogued custom metrics. No Pulumi needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from metric_catalogue import CATALOGUE, NAMESPACE
from payhook_infra import definitions, placeholders, settings
from payhook_infra.definitions import DefinitionError

ALARMS = REPO_ROOT / "alarms"
DASHBOARDS = REPO_ROOT / "dashboards"
RULES = REPO_ROOT / "rules"
RUNBOOKS = REPO_ROOT / "runbooks"

RUNBOOK_SECTIONS = [
    "What fired and why it matters",
    "Impact on payments",
    "First five minutes",
    "Logs Insights queries",
    "X-Ray filter expressions",
    "Dashboard widgets",
    "Mitigations",
    "Escalation",
    "Confirm recovery",
]

REQUIRED_ALARM_KINDS = {
    "queue-depth",
    "queue-age",
    "dlq-not-empty",
    "lambda-error-rate",
    "lambda-throttles",
    "api-5xx-rate",
    "signature-failures",
    "emf-errors",
    "eventbridge-failed-invocations",
}


def _all_json_files() -> list[Path]:
    return sorted(
        p
        for folder in (ALARMS, DASHBOARDS, RULES)
        for p in folder.glob("*.json")
    )


@pytest.mark.parametrize("path", _all_json_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_json_file_parses(path: Path) -> None:
    json.loads(path.read_text(encoding="utf-8"))


def test_every_alarm_file_follows_the_documented_format() -> None:
    kinds = definitions.load_alarm_kinds(ALARMS, RUNBOOKS)
    assert {k.kind for k in kinds} >= REQUIRED_ALARM_KINDS


def test_every_alarm_has_a_runbook_and_every_runbook_an_alarm() -> None:
    alarm_runbooks = {kind.runbook for kind in definitions.load_alarm_kinds(ALARMS)}
    runbook_files = {p.name for p in RUNBOOKS.glob("*.md") if p.name != "README.md"}
    assert alarm_runbooks == runbook_files


@pytest.mark.parametrize(
    "path", sorted(p for p in RUNBOOKS.glob("*.md") if p.name != "README.md"), ids=lambda p: p.name
)
def test_runbooks_have_every_required_section_in_order(path: Path) -> None:
    headings = re.findall(r"^## (.+?)\s*$", path.read_text(encoding="utf-8"), flags=re.M)
    assert headings[: len(RUNBOOK_SECTIONS)] == RUNBOOK_SECTIONS, path.name
    text = path.read_text(encoding="utf-8")
    assert "```" in text, "runbooks carry copy-paste queries and commands"


def test_dlq_runbook_gives_both_payhook_and_aws_cli_redrive() -> None:
    text = (RUNBOOKS / "dlq-not-empty.md").read_text(encoding="utf-8")
    assert "payhook dlq redrive" in text
    assert "aws sqs start-message-move-task" in text


def test_rules_folder_has_at_least_five_valid_rules() -> None:
    rules = definitions.load_rules(RULES)
    assert len(rules) >= 5
    assert all(t.function == "event-processor" for r in rules for t in r.targets)


def test_dashboard_bodies_use_only_documented_placeholders() -> None:
    boards = definitions.load_dashboards(DASHBOARDS)
    assert boards, "dashboards/ must hold at least one dashboard body"
    readme = (DASHBOARDS / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`\$\{([^}]+)\}`", readme))
    allowed = definitions.dashboard_placeholders() | definitions.DASHBOARD_LIST_PLACEHOLDERS
    # Every placeholder the program fills is documented (families once, with <provider>…).
    for name in allowed:
        family = re.sub(r"\.(.+)$", ".<", name)
        assert name in documented or any(d.startswith(family) for d in documented), name


def test_the_placeholder_vocabulary_is_the_shared_file() -> None:
    """`placeholders.json` is the one list; the deploy expands it over its own providers and
    functions, which the file's providers must match."""
    vocabulary = json.loads((REPO_ROOT / "placeholders.json").read_text(encoding="utf-8"))
    assert placeholders.VOCABULARY_FILE == REPO_ROOT / "placeholders.json"
    assert tuple(vocabulary["providers"]) == settings.PROVIDERS
    assert definitions.ALARM_GLOBAL_PLACEHOLDERS == frozenset(vocabulary["alarm"]["global"])
    assert list(definitions.ALARM_SCOPES) == [s["scope"] for s in vocabulary["alarm"]["scopes"]]
    assert definitions.DASHBOARD_LIST_PLACEHOLDERS == frozenset(vocabulary["dashboard"]["lists"])
    names = definitions.dashboard_placeholders()
    assert set(vocabulary["dashboard"]["strings"]) <= names
    assert {"queue.stripe", "dlq.square", "function.sweeper", "log_group.paypal-processor"} <= names
    assert not any("{" in n for n in names)


def test_alarm_placeholders_are_documented() -> None:
    readme = (ALARMS / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`\$\{([^}]+)\}`", readme))
    everything = set(definitions.ALARM_GLOBAL_PLACEHOLDERS).union(*definitions.ALARM_SCOPES.values())
    assert everything <= documented


def test_every_documented_alarm_field_is_accepted_and_only_those() -> None:
    readme = (ALARMS / "README.md").read_text(encoding="utf-8")
    for field in ("kind", "title", "scope", "severity", "summary", "runbook", "metric",
                  "metrics", "threshold", "comparison", "evaluation_periods",
                  "datapoints_to_alarm", "treat_missing_data"):
        assert f"`{field}`" in readme, field


# -- custom metrics against the catalogue ---------------------------------------------------

_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}([^']*)'")


def _custom_metrics_in_dashboards() -> list[tuple[str, frozenset[str], str]]:
    """(metric name, dimension names, where) for every Payhook metric on the dashboards."""
    found = []
    for board in definitions.load_dashboards(DASHBOARDS):
        for index, widget in enumerate(board.body["widgets"]):
            for entry in widget["properties"].get("metrics", []):
                where = f"{board.source_file} widget {index}"
                head = [e for e in entry if not isinstance(e, dict)]
                if head and head[0] == NAMESPACE:
                    found.append((head[1], frozenset(head[2::2]), where))
                for option in (e for e in entry if isinstance(e, dict)):
                    match = _SEARCH.search(option.get("expression", ""))
                    if match:
                        schema = [s.strip() for s in match.group(1).split(",")]
                        name = re.search(r'MetricName="([^"]+)"', match.group(2))
                        if schema[0] == NAMESPACE:
                            assert name, f"{where}: a SEARCH must name its MetricName"
                            found.append((name.group(1), frozenset(schema[1:]), where))
    return found


def _custom_metrics_in_alarms() -> list[tuple[str, frozenset[str], str]]:
    found = []
    for kind in definitions.load_alarm_kinds(ALARMS):
        metrics = [kind.metric] if kind.metric else [q["metric"] for q in kind.metrics if "metric" in q]
        for metric in metrics:
            if metric["namespace"] == NAMESPACE:
                found.append((metric["metric_name"], frozenset(metric["dimensions"]), kind.source_file))
    return found


def test_custom_metrics_on_dashboards_and_alarms_exist_in_the_catalogue() -> None:
    for name, dimensions, where in _custom_metrics_in_dashboards() + _custom_metrics_in_alarms():
        assert name in CATALOGUE, f"{where}: {name} is not in the metric catalogue"
        assert dimensions in CATALOGUE[name], (
            f"{where}: {name} is emitted with {[sorted(d) for d in CATALOGUE[name]]}, "
            f"not {sorted(dimensions)}"
        )


def test_every_catalogue_metric_is_on_the_dashboard() -> None:
    on_dashboard = {name for name, _, _ in _custom_metrics_in_dashboards()}
    assert set(CATALOGUE) - on_dashboard == set()


def test_processor_metrics_use_the_function_name_as_service() -> None:
    board = definitions.load_dashboards(DASHBOARDS)[0]
    for widget in board.body["widgets"]:
        for entry in widget["properties"].get("metrics", []):
            head = [e for e in entry if not isinstance(e, dict)]
            if head and head[0] == NAMESPACE and "provider" in head and head[1] in {
                "RecordsProcessed", "RecordsSkipped", "RecordsFailed", "PublishFailures", "MessagesToDlq"
            }:
                dims = dict(zip(head[2::2], head[3::2]))
                assert dims["service"] == f"{dims['provider']}-processor"


# -- loaders reject what AWS or the program would reject ---------------------------------

VALID_RULE = {
    "name": "high-value-payments",
    "description": "Succeeded payments of 1000 or more.",
    "event_bus": "payment-events",
    "state": "ENABLED",
    "event_pattern": {"source": [{"prefix": "payhook."}], "detail-type": ["payment.succeeded"]},
    "targets": [
        {
            "id": "event-processor",
            "function": "event-processor",
            "retry_policy": {"maximum_retry_attempts": 10, "maximum_event_age_seconds": 3600},
            "dead_letter_queue": "events-dlq",
        }
    ],
}


def _write_rules(tmp_path: Path, *rules: dict) -> Path:
    for rule in rules:
        (tmp_path / f"{rule['name']}.json").write_text(json.dumps(rule))
    return tmp_path


def test_rule_loader_reads_the_documented_format(tmp_path: Path) -> None:
    (rule,) = definitions.load_rules(_write_rules(tmp_path, VALID_RULE))
    assert rule.name == "high-value-payments"
    assert rule.targets[0].maximum_retry_attempts == 10
    assert rule.targets[0].maximum_event_age_seconds == 3600
    assert rule.targets[0].dead_letter_queue == "events-dlq"


def test_rule_retry_policy_and_dlq_are_optional(tmp_path: Path) -> None:
    bare = json.loads(json.dumps(VALID_RULE))
    del bare["targets"][0]["retry_policy"], bare["targets"][0]["dead_letter_queue"]
    (rule,) = definitions.load_rules(_write_rules(tmp_path, bare))
    assert rule.targets[0].maximum_retry_attempts is None
    assert rule.targets[0].dead_letter_queue is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(event_bus="default"), "$.event_bus"),
        (lambda r: r.update(state="ON"), "$.state"),
        (lambda r: r.update(event_pattern={}), "$.event_pattern"),
        (lambda r: r.update(colour="blue"), "unknown fields ['colour']"),
        (lambda r: r["targets"][0].update(function="nope"), "$.targets[0].function"),
        (lambda r: r["targets"][0].update(dead_letter_queue="other"), "$.targets[0].dead_letter_queue"),
        (lambda r: r["targets"][0]["retry_policy"].update(maximum_retry_attempts=186), "maximum_retry_attempts"),
        (lambda r: r["targets"][0]["retry_policy"].update(maximum_event_age_seconds=59), "maximum_event_age_seconds"),
        (lambda r: r.update(targets=[]), "$.targets"),
    ],
)
def test_rule_loader_rejects_invalid_rules_with_file_and_path(tmp_path: Path, mutate, message: str) -> None:
    rule = json.loads(json.dumps(VALID_RULE))
    mutate(rule)
    with pytest.raises(DefinitionError) as error:
        definitions.load_rules(_write_rules(tmp_path, rule))
    assert str(error.value).startswith("high-value-payments.json: ")
    assert message in str(error.value)


def test_rule_name_must_match_its_file(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text(json.dumps(VALID_RULE))
    with pytest.raises(DefinitionError, match=r"other.json: \$.name: must equal the file name"):
        definitions.load_rules(tmp_path)


def _alarm(**changes) -> dict:
    alarm = json.loads((ALARMS / "queue-depth.json").read_text())
    alarm.update(changes)
    return alarm


@pytest.mark.parametrize(
    ("alarm", "message"),
    [
        (_alarm(scope="bucket"), "$.scope"),
        (_alarm(severity="page-everyone"), "$.severity"),
        (_alarm(comparison="Above"), "$.comparison"),
        (_alarm(treat_missing_data="zero"), "$.treat_missing_data"),
        (_alarm(datapoints_to_alarm=6), "$.datapoints_to_alarm"),
        (_alarm(runbook="other.md"), "$.runbook"),
        (_alarm(summary="${rule_name} is broken"), "not available for scope 'queue'"),
        (_alarm(summary="${queue_name"), "malformed placeholder"),
        (_alarm(metrics=[]), "exactly one of 'metric'"),
        (_alarm(metric={**_alarm()["metric"], "period": 90}), "$.metric.period"),
        (_alarm(metric={**_alarm()["metric"], "stat": "Median"}), "$.metric.stat"),
    ],
)
def test_alarm_loader_rejects_invalid_alarms_with_file_and_path(alarm: dict, message: str) -> None:
    with pytest.raises(DefinitionError) as error:
        definitions.parse_alarm(alarm, "queue-depth.json", RUNBOOKS)
    assert str(error.value).startswith("queue-depth.json: ")
    assert message in str(error.value)


def test_metric_math_alarm_must_return_exactly_one_series() -> None:
    alarm = json.loads((ALARMS / "lambda-error-rate.json").read_text())
    alarm["metrics"][0]["return_data"] = True
    with pytest.raises(DefinitionError, match="exactly one query must have return_data true"):
        definitions.parse_alarm(alarm, "lambda-error-rate.json", RUNBOOKS)


def test_alarm_description_over_1024_characters_is_refused() -> None:
    kind = definitions.parse_alarm(_alarm(summary="x" * 400), "queue-depth.json")
    with pytest.raises(DefinitionError, match="the limit is 1024"):
        definitions.render_alarm(
            kind,
            name="payhook-prod-queue-depth-stripe",
            values={"queue_name": "q", "service": "s", "provider": "p"},
            runbook_url="https://example.com/" + "r" * 700,
        )


# -- placeholder filling ---------------------------------------------------------------------

def test_fill_replaces_strings_and_splices_list_placeholders() -> None:
    body = {"a": "${region}/${queue.stripe}", "alarms": ["${alarm_arns}"], "n": 3}
    filled = placeholders.fill(
        body, {"region": "us-east-1", "queue.stripe": "q.fifo"}, {"alarm_arns": ["a1", "a2"]}
    )
    assert filled == {"a": "us-east-1/q.fifo", "alarms": ["a1", "a2"], "n": 3}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"a": ["${nope}"]}, "$.a[0]: unknown placeholder ${nope}"),
        ({"a": "x ${alarm_arns}"}, "$.a: list placeholder ${alarm_arns} must be a whole array element on its own"),
        ({"a": "${Region}"}, "$.a: malformed placeholder '${Region}'"),
    ],
)
def test_fill_refuses_unknown_misplaced_and_malformed_placeholders(body: dict, message: str) -> None:
    with pytest.raises(placeholders.PlaceholderError) as error:
        placeholders.fill(body, {"region": "r"}, {"alarm_arns": []}, source="board.json")
    assert str(error.value) == f"board.json: {message}"
