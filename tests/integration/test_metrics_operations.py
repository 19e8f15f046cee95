"""The operator side of the metrics: dashboard, alert rules, promtool, gunicorn workers.

- Every PromQL expression in the Grafana dashboard and in the Prometheus alert rules names only
  series (and labels, and label values) that a real scrape of the service shows. The names come
  from /metrics of an app that served real requests, not from a list kept by hand.
- ``promtool`` (Debian package ``prometheus``) accepts the scrape, the rule file and every
  dashboard query, and each alert fires on its scenario and not on a quiet one.
- Under real gunicorn with two workers and ``PROMETHEUS_MULTIPROC_DIR``, one scrape of
  /metrics adds up every worker's counts exactly.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import yaml  # type: ignore[import-untyped]
from flask import Flask
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from auth_microservice_app import audit
from tests.conftest import PASSWORD, make_app, reset_state
from tests.running_server import ROOT, Answer, start_service

pytestmark = pytest.mark.integration

DASHBOARD = ROOT / "infrastructure" / "grafana" / "auth-service-dashboard.json"
ALERTS = ROOT / "infrastructure" / "prometheus" / "alerts.yml"
PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = "promtool is not installed (Debian: apt-get install -y prometheus)"

REQUEST_BUCKET = "flask_http_request_duration_seconds_bucket"
#: Series Prometheus makes itself for every target, and the labels it attaches at scrape time.
PROMETHEUS_OWN_SERIES = {"up": {"job", "instance"}}
TARGET_LABELS = {"job", "instance"}


# --- What the service exports ------------------------------------------------------------


@dataclass
class Exported:
    """Series names, label names and label values seen in one /metrics scrape.

    ``*_created`` samples are left out: the single-process scrape has them, but production's
    multiprocess mode never exports them, so a query on one would show nothing.
    """

    labels: dict[str, set[str]] = field(default_factory=dict)
    values: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def parse(cls, text: str) -> Exported:
        exported = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_created") and family.type != "gauge":
                    continue
                exported.labels.setdefault(sample.name, set()).update(sample.labels)
                for label, value in sample.labels.items():
                    exported.values[(sample.name, label)].add(value)
        return exported


def sample_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in an exposition text (0 when absent, like an unseen counter)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


# --- A small PromQL tokenizer -------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![\w.])
    |(?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<variable>\$\{\w+\}|\$\w+)
    |(?P<ident>[a-zA-Z_:][\w:]*)
    |(?P<op>==|!=|>=|<=|=~|!~|[-+*/%^=<>@])
    |(?P<punct>[{}()\[\],])
    """,
    re.VERBOSE,
)
AGGREGATORS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}  # fmt: skip
FUNCTIONS = AGGREGATORS | {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "count_over_time", "day_of_month", "day_of_week", "day_of_year",
    "days_in_month", "delta", "deriv", "exp", "floor", "histogram_quantile", "holt_winters",
    "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time",
    "ln", "log10", "log2", "max_over_time", "min_over_time", "minute", "month",
    "predict_linear", "present_over_time", "quantile_over_time", "rate", "resets", "round",
    "scalar", "sgn", "sort", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "time", "timestamp", "vector", "year",
}  # fmt: skip
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
MATCH_OPS = {"=", "!=", "=~", "!~"}


class PromQLError(ValueError):
    pass


@dataclass
class Selector:
    metric: str
    matchers: list[tuple[str, str, str]]  # (label, operator, value)


@dataclass
class Parsed:
    selectors: list[Selector]
    grouping_labels: set[str]
    functions: set[str]


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise PromQLError(f"cannot tokenize at {expr[position : position + 20]!r} in {expr!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def _unquote(literal: str) -> str:
    if literal.startswith('"'):
        return str(json.loads(literal))  # Go and JSON escapes agree on what dashboards use
    return literal[1:-1].replace("\\'", "'")


class _Parser:
    """One pass over the tokens; each method consumes one construct and returns the next index.

    Identifiers inside strings, ``{...}`` matchers, ``[...]`` ranges and ``by/on/...(...)``
    lists are not metric names; an identifier before ``(`` must be a known function. Anything
    the tokenizer does not understand fails loudly instead of being skipped.
    """

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = tokenize(expr)
        self.parsed = Parsed([], set(), set())

    def at(self, index: int) -> str | None:
        return self.tokens[index][1] if index < len(self.tokens) else None

    def fail(self, message: str) -> PromQLError:
        return PromQLError(f"{message} in {self.expr!r}")

    def run(self) -> Parsed:
        i = 0
        while i < len(self.tokens):
            kind, text = self.tokens[i]
            if kind == "ident":
                i = self.identifier(i)
            elif text == "{":
                raise self.fail("selector without a metric name")
            elif text == "[":
                i = self.range(i + 1)
            else:
                i += 1
        return self.parsed

    def identifier(self, i: int) -> int:
        text = self.tokens[i][1]
        lowered = text.lower()
        if lowered in GROUPING:
            return self.grouping(i + 1, text) if self.at(i + 1) == "(" else i + 1
        if lowered in KEYWORDS:
            return i + 1
        if lowered in AGGREGATORS:
            self.parsed.functions.add(lowered)
            return i + 1
        if self.at(i + 1) == "(":
            if text not in FUNCTIONS:
                raise self.fail(f"unknown function {text!r}")
            self.parsed.functions.add(text)
            return i + 1
        selector = Selector(text, [])
        self.parsed.selectors.append(selector)
        return self.matchers(i + 2, selector) if self.at(i + 1) == "{" else i + 1

    def grouping(self, i: int, keyword: str) -> int:
        """``by (a, b)`` and friends, from after the ``(``; returns the index after ``)``."""
        i += 1
        while self.at(i) != ")":
            if i >= len(self.tokens):
                raise self.fail(f"unclosed {keyword}(...)")
            kind, text = self.tokens[i]
            if kind == "ident":
                self.parsed.grouping_labels.add(text)
            elif text != ",":
                raise self.fail(f"unexpected {text!r} in {keyword}(...)")
            i += 1
        return i + 1

    def range(self, i: int) -> int:
        """``[5m]``, ``[$__rate_interval]``, ``[1h:5m]``; returns the index after ``]``."""
        while self.at(i) != "]":
            if i >= len(self.tokens):
                raise self.fail("unclosed [...]")
            kind, text = self.tokens[i]
            if kind not in {"duration", "variable"} and not text.startswith(":"):
                raise self.fail(f"unexpected {text!r} in a range")
            i += 1
        return i + 1

    def matchers(self, i: int, selector: Selector) -> int:
        """``label op "value"`` pairs up to the closing brace; returns the index after it."""
        while self.at(i) != "}":
            try:
                (label_kind, label), (_, operator), (value_kind, value) = self.tokens[i : i + 3]
            except ValueError:
                raise self.fail("unclosed {...}") from None
            if label_kind != "ident" or operator not in MATCH_OPS or value_kind != "string":
                raise self.fail(f"bad label matcher {label} {operator} {value}")
            selector.matchers.append((label, operator, _unquote(value)))
            i += 4 if self.at(i + 3) == "," else 3
        return i + 1


def parse_promql(expr: str) -> Parsed:
    """Metric selectors (with their label matchers), grouping labels and functions of ``expr``."""
    return _Parser(expr).run()


_LITERAL_ALTERNATION = re.compile(r"^[\w\-]+(?:\|[\w\-]+)*$")


def _matcher_problems(selector: Selector, labels: set[str], exported: Exported) -> list[str]:
    problems: list[str] = []
    own = selector.metric in PROMETHEUS_OWN_SERIES
    for label, operator, value in selector.matchers:
        if label not in labels | TARGET_LABELS:
            problems.append(f"{selector.metric} has no label {label!r} (has {sorted(labels)})")
            continue
        # Values of the service's own labels must be ones it produces. Not checked: target
        # labels, Grafana variables, negative matchers, regexes other than a plain "a|b".
        if own or label in TARGET_LABELS or "$" in value or operator not in {"=", "=~"}:
            continue
        if operator == "=~" and not _LITERAL_ALTERNATION.match(value):
            continue
        seen = exported.values[(selector.metric, label)]
        for alternative in value.split("|") if operator == "=~" else [value]:
            if alternative not in seen:
                problems.append(
                    f"{selector.metric}{{{label}={alternative!r}}} never seen, only {sorted(seen)}"
                )
    return problems


def problems_with(expr: str, exported: Exported) -> list[str]:
    """Why ``expr`` refers to something the service does not export (empty when all is well)."""
    try:
        parsed = parse_promql(expr)
    except PromQLError as exc:
        return [str(exc)]
    problems: list[str] = [] if parsed.selectors else ["no metric at all"]
    known_labels: set[str] = set(TARGET_LABELS)
    for selector in parsed.selectors:
        labels = exported.labels.get(selector.metric, PROMETHEUS_OWN_SERIES.get(selector.metric))
        if labels is None:
            problems.append(f"{selector.metric} is not exported")
            continue
        known_labels |= labels
        problems += _matcher_problems(selector, labels, exported)
    problems += [
        f"grouping label {label!r} is on none of the metrics"
        for label in sorted(parsed.grouping_labels - known_labels)
    ]
    return [f"{problem} (in {expr!r})" for problem in problems]


# --- The files under test -----------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def all_panels(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in container.get("panels", []):
        yield panel
        yield from all_panels(panel)  # panels inside (collapsed) rows


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    queries = [
        (f"panel {panel.get('title')!r}", target["expr"])
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", text)
        assert match, f"variable {variable['name']}: unsupported query {text!r}"
        # label_values(selector, label): the selector must exist and carry the label.
        selector, label = match.groups()
        queries.append((f"variable ${variable['name']}", f"group by ({label}) ({selector})"))
    return queries


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def substitute_grafana_variables(expr: str) -> str:
    values = {"__rate_interval": "5m", "__interval": "1m", "__range": "6h", "job": "auth-service"}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown Grafana variable ${name} in {expr!r}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


# --- A scrape of the service after real traffic --------------------------------------------


@pytest.fixture(scope="module")
def service_scrape(
    app: Flask, signing_key_pem: str, redis_client: redis_lib.Redis, tmp_path_factory: Any
) -> str:
    """/metrics of a fresh app (its own registry) after the flows that move each counter.

    Rate limits and the brute-force throttle are on with small limits so that they really
    trigger (the limits count in this process' memory: parallel runs never share them).
    Events whose flows need an outside party (an OAuth provider, an authenticator app, a
    mail server refusing for good) are recorded with ``audit.record``, the function the
    services call, so their names and labels still come from the service's own mapping.
    """
    reset_state(app, redis_client)
    metered = make_app(
        signing_key_pem,
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="5/minute",
        RATELIMIT_STORAGE_URI="memory://",
        LOGIN_THROTTLE_THRESHOLD=1,
        EMAIL_FILE_DIR=str(tmp_path_factory.mktemp("mail")),
    )
    client = metered.test_client()
    assert client.get("/.well-known/jwks.json").status_code == 200
    assert client.get("/no-such-route").status_code == 404
    registered = client.post(
        "/api/v1/auth/register", json={"email": "ops@example.com", "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.json

    def sign_in() -> dict[str, Any]:
        response = client.post(
            "/api/v1/auth/login", json={"email": "ops@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200, response.json
        return dict(response.json)

    first = sign_in()
    logout = client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": first["refresh_token"]},
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert logout.status_code < 300, logout.json
    tokens = sign_in()
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.json
    reused = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401, reused.json
    # invalid_credentials, then the account throttle (locked), then a rate limit (429).
    seen: list[str] = []
    nobody = f"nobody-{uuid.uuid4().hex[:12]}@example.com"
    for _ in range(15):
        response = client.post("/api/v1/auth/login", json={"email": nobody, "password": PASSWORD})
        message = str(response.json["error"]["message"]) if response.json else ""
        kind = "throttle" if "failed attempts" in message else "limit"
        seen.append(f"{response.status_code} {kind}" if response.status_code == 429 else "401")
        if seen[-1] == "429 limit":
            break
    assert seen[0] == "401" and "429 throttle" in seen and seen[-1] == "429 limit", seen
    with metered.test_request_context("/"):
        audit.record("mfa_succeeded")
        audit.record("oauth_sign_in", provider="google")
        audit.record("email_failed", kind="verify_email", reason="550 mailbox unavailable")
    # an operator's change, as an admin's through /api/v1/admin: auth_admin_actions_total
    roles = metered.test_cli_runner().invoke(
        args=["users", "set-roles", "ops@example.com", "user", "support"]
    )
    assert roles.exit_code == 0, roles.output
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    for needed in ("auth_rate_limited_total", "auth_revocations_total", "auth_admin_actions_total"):
        assert f"\n{needed}{{" in text, f"the flows did not move {needed}:\n{text}"
    return text


# --- Dashboard ----------------------------------------------------------------------------


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    dashboard = load_dashboard()
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["title"] and dashboard["uid"]
    assert dashboard.get("id") is None, "an exported dashboard carries no database id"
    inputs = {item["name"]: item for item in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    requires = {(item["type"], item["id"]) for item in dashboard["__requires"]}
    assert {("grafana", "grafana"), ("datasource", "prometheus")} <= requires

    panels = list(all_panels(dashboard))
    assert len(panels) >= 10
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        title = panel.get("title")
        assert title, f"panel {panel['id']} has no title"
        assert ("panel", panel["type"]) in requires, f"{panel['type']} missing from __requires"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, title
        targets = panel.get("targets", [])
        assert targets, f"panel {title!r} has no target"
        for target in targets:
            assert target.get("expr", "").strip(), f"panel {title!r}: empty query"
            assert target["datasource"] == panel["datasource"], title
        refs = [target["refId"] for target in targets]
        assert len(refs) == len(set(refs)), f"panel {title!r}: duplicate refIds"
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, title
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{title!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = title

    variables = {item["name"]: item for item in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"


def test_dashboard_has_the_operator_views() -> None:
    queries = [expr for _, expr in dashboard_queries(load_dashboard())]
    used = {selector.metric for expr in queries for selector in parse_promql(expr).selectors}
    assert used >= {
        "flask_http_request_total",
        "flask_http_request_duration_seconds_count",
        "flask_http_request_duration_seconds_bucket",
        "auth_logins_total",
        "auth_refresh_token_reuse_detections_total",
        "auth_rate_limited_total",
        "auth_emails_total",
        "auth_blocklist_database_fallback_total",
        "auth_password_hash_duration_seconds_bucket",
        "auth_two_factor_events_total",
        "auth_oauth_sign_ins_total",
    }, sorted(used)

    def has(pattern: str) -> bool:
        return any(re.search(pattern, " ".join(expr.split())) for expr in queries)

    assert has(r"sum by \(endpoint\) \(rate\(flask_http_request_duration_seconds_count"), (
        "by endpoint"
    )
    assert has(r'status=~"5\.\."') and has(r'status=~"4\.\."'), "5xx and 4xx ratios"
    for quantile in ("0.5", "0.95", "0.99"):
        pattern = rf"histogram_quantile\({quantile}, sum by \([^)]*le\) \(rate\({REQUEST_BUCKET}"
        assert has(pattern), f"request latency quantile {quantile}"
    assert has(r"histogram_quantile\(0\.95, .*auth_password_hash_duration_seconds_bucket")
    assert has(r"sum by \(result\) \(rate\(auth_logins_total")
    assert has(
        r'auth_emails_total\{status="queued"\}.*-.*auth_emails_total\{status=~"sent\|failed"\}'
    ), "email backlog = queued - sent - failed"


# --- Names: dashboard and alert rules against a real scrape --------------------------------


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_queries_use_only_series_the_service_exports(source: str, service_scrape: str) -> None:
    exported = Exported.parse(service_scrape)
    if source == "dashboard":
        queries = dashboard_queries(load_dashboard())
    else:
        queries = [(f"alert {rule['alert']}", rule["expr"]) for rule in load_rules()]
    assert queries
    problems = [
        f"{where}: {problem}"
        for where, expr in queries
        for problem in problems_with(expr, exported)
    ]
    assert not problems, "\n".join(problems) + f"\n\nexported: {sorted(exported.labels)}"


def test_the_name_check_catches_what_the_service_does_not_export(service_scrape: str) -> None:
    """The checker itself: each of these mistakes must be reported."""
    exported = Exported.parse(service_scrape)
    good = 'sum by (endpoint) (rate(flask_http_request_duration_seconds_count{job="x"}[5m]))'
    assert problems_with(good, exported) == []
    # A label that looks natural but is not on this counter (it is only on the histogram).
    assert problems_with('sum(rate(flask_http_request_total{endpoint="auth.login"}[5m]))', exported)
    assert problems_with("sum by (endpoint) (rate(flask_http_request_total[5m]))", exported)
    assert problems_with("rate(auth_login_total[5m])", exported)  # typo in the name
    assert problems_with('sum(auth_logins_total{result="invalid_credential"})', exported)
    assert problems_with("rate(flask_http_request_duration_seconds[5m])", exported)  # no suffix
    assert problems_with("frobnicate(up)", exported)
    assert problems_with('{__name__="up"}', exported)
    # Identifiers inside strings, ranges and grouping lists are not metrics.
    quoted = 'label_replace(up, "metric", "auth_nothing_total", "job", "(.*)") offset 1h'
    assert problems_with(quoted, exported) == []
    assert parse_promql(quoted).selectors == [Selector("up", [])]
    nested = parse_promql(
        'histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{x=~"1|2"}[$__rate_interval])))'
        " > on (job) group_left b_total"
    )
    assert [s.metric for s in nested.selectors] == ["a_bucket", "b_total"]
    assert nested.grouping_labels == {"job", "le"}
    assert nested.selectors[0].matchers == [("x", "=~", "1|2")]


# --- Alert rules --------------------------------------------------------------------------

REQUIRED_ALERT_SIGNALS = {
    "5xx ratio": r'flask_http_request_total\{[^}]*status=~"5\.\."',
    "p99 latency": r"histogram_quantile\(0\.99,.*flask_http_request_duration_seconds_bucket",
    "refresh-token reuse": r"auth_refresh_token_reuse_detections_total",
    "login failure spike": r'auth_logins_total\{[^}]*result=~"invalid_credentials',
    "email failures": r'auth_emails_total\{status="failed"\}',
    "email backlog": r'auth_emails_total\{status="queued"\}',
    "blocklist fallback": r"auth_blocklist_database_fallback_total",
    "target down": r"\bup\{[^}]*\} == 0",
}


def test_alert_rules_are_complete() -> None:
    rules = load_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), names
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]
    flat = [" ".join(rule["expr"].split()) for rule in rules]
    missing = [
        signal_name
        for signal_name, pattern in REQUIRED_ALERT_SIGNALS.items()
        if not any(re.search(pattern, expr) for expr in flat)
    ]
    assert not missing, f"no alert on: {missing}"


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.skip(NO_PROMTOOL)
    return subprocess.run(  # noqa: S603 - fixed arguments
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_alert_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    queries = dashboard_queries(load_dashboard())
    rules = [
        {"record": f"dashboard:query_{n}", "expr": substitute_grafana_variables(expr)}
        for n, (_, expr) in enumerate(queries)
    ]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@dataclass
class Scenario:
    """Input series (1 minute apart) and the alerts expected at each evaluation time."""

    series: dict[str, str]
    expected: list[tuple[str, str, list[dict[str, str]]]]  # (eval time, alert, alerts' labels)


SVC = 'job="auth-service", instance="api-1:8000"'
SCENARIOS: dict[str, Scenario] = {
    "target down": Scenario(
        {f"up{{{SVC}}}": "1 1 0x10"},
        [
            ("3m", "AuthServiceTargetDown", []),  # pending: down for only 1 minute
            ("5m", "AuthServiceTargetDown", [{"job": "auth-service", "instance": "api-1:8000"}]),
            ("5m", "AuthServiceNoTargetUp", [{}]),
        ],
    ),
    "one of two targets down": Scenario(
        {f"up{{{SVC}}}": "0x10", 'up{job="auth-service", instance="api-2:8000"}': "1x10"},
        [("8m", "AuthServiceNoTargetUp", [])],
    ),
    "5xx ratio": Scenario(
        {
            f'flask_http_request_total{{{SVC}, method="GET", status="200"}}': "0+60x30",
            f'flask_http_request_total{{{SVC}, method="POST", status="500"}}': "0+6x30",
        },
        [
            ("3m", "AuthServiceHigh5xxRatio", []),
            ("15m", "AuthServiceHigh5xxRatio", [{"job": "auth-service"}]),
        ],
    ),
    "5xx on an idle service": Scenario(
        {
            f'flask_http_request_total{{{SVC}, method="GET", status="200"}}': "0+1x30",
            f'flask_http_request_total{{{SVC}, method="POST", status="500"}}': "0+1x30",
        },
        [("20m", "AuthServiceHigh5xxRatio", [])],
    ),
    "slow requests": Scenario(
        {
            f'{REQUEST_BUCKET}{{{SVC}, endpoint="auth.login", le="{le}"}}': values
            for le, values in (
                ("0.5", "0x30"),
                ("1.0", "0x30"),
                ("2.5", "0+10x30"),
                ("+Inf", "0+10x30"),
            )
        },
        [
            ("5m", "AuthServiceP99LatencyHigh", []),
            ("20m", "AuthServiceP99LatencyHigh", [{"job": "auth-service"}]),
        ],
    ),
    "fast requests": Scenario(
        {
            f'{REQUEST_BUCKET}{{{SVC}, endpoint="auth.login", le="{le}"}}': values
            for le, values in (
                ("0.5", "0+10x30"),
                ("1.0", "0+10x30"),
                ("2.5", "0+10x30"),
                ("+Inf", "0+10x30"),
            )
        },
        [("20m", "AuthServiceP99LatencyHigh", [])],
    ),
    "refresh-token reuse": Scenario(
        {f"auth_refresh_token_reuse_detections_total{{{SVC}}}": "0 0 0 1x30"},
        [
            ("2m", "AuthRefreshTokenReuseDetected", []),
            ("5m", "AuthRefreshTokenReuseDetected", [{"job": "auth-service"}]),
            ("25m", "AuthRefreshTokenReuseDetected", []),  # the 10 m window has passed
        ],
    ),
    "credential stuffing": Scenario(
        {
            f'auth_logins_total{{{SVC}, result="invalid_credentials"}}': "0+120x30",
            f'auth_logins_total{{{SVC}, result="success"}}': "0+30x30",
        },
        [
            ("8m", "AuthLoginFailureSpike", []),
            ("20m", "AuthLoginFailureSpike", [{"job": "auth-service"}]),
        ],
    ),
    "busy but healthy logins": Scenario(
        {
            f'auth_logins_total{{{SVC}, result="invalid_credentials"}}': "0+120x30",
            f'auth_logins_total{{{SVC}, result="success"}}': "0+600x30",
        },
        [("20m", "AuthLoginFailureSpike", [])],
    ),
    "email failures": Scenario(
        {f'auth_emails_total{{{SVC}, status="failed"}}': "0 0 1x30"},
        [("3m", "AuthEmailDeliveryFailing", []), ("8m", "AuthEmailDeliveryFailing", [{}])],
    ),
    "email backlog": Scenario(
        {
            f'auth_emails_total{{{SVC}, status="queued"}}': "0+10x90",
            'auth_emails_total{job="auth-worker", instance="w-1", status="sent"}': "0+2x90",
        },
        [("20m", "AuthEmailBacklogGrowing", []), ("70m", "AuthEmailBacklogGrowing", [{}])],
    ),
    "email delivery keeping up": Scenario(
        {
            f'auth_emails_total{{{SVC}, status="queued"}}': "0+10x90",
            'auth_emails_total{job="auth-worker", instance="w-1", status="sent"}': "0+9x90",
            'auth_emails_total{job="auth-worker", instance="w-1", status="failed"}': "0+1x90",
        },
        [("70m", "AuthEmailBacklogGrowing", [])],
    ),
    "no delivery counters scraped": Scenario(
        {f'auth_emails_total{{{SVC}, status="queued"}}': "0+10x90"},
        [("70m", "AuthEmailBacklogGrowing", [])],  # silent rather than always firing
    ),
    "redis down": Scenario(
        {f"auth_blocklist_database_fallback_total{{{SVC}}}": "0 0 0+5x20"},
        [
            ("4m", "AuthBlocklistDatabaseFallback", []),
            ("10m", "AuthBlocklistDatabaseFallback", [{"job": "auth-service"}]),
        ],
    ),
}


def test_every_alert_has_a_scenario_that_fires_it() -> None:
    fired = {alert for s in SCENARIOS.values() for _, alert, expected in s.expected if expected}
    assert fired == {rule["alert"] for rule in load_rules()}


def test_alerts_fire_on_their_scenarios_and_not_on_quiet_ones(tmp_path: Path) -> None:
    """``promtool test rules``: expression, threshold, ``for:`` and labels of every alert.

    Annotations are stripped from the copy under test (promtool would compare their rendered
    text); instead every ``$labels.x`` an annotation uses must be among the alert's labels.
    """
    rules = {rule["alert"]: rule for rule in load_rules()}
    document = yaml.safe_load(ALERTS.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    rule_copy = tmp_path / "alerts-without-annotations.yml"
    rule_copy.write_text(yaml.safe_dump(document))

    tests = []
    for name, scenario in SCENARIOS.items():
        cases = []
        for eval_time, alert, expected in scenario.expected:
            severity = rules[alert]["labels"]["severity"]
            for labels in expected:
                used = set(re.findall(r"\$labels\.(\w+)", json.dumps(rules[alert]["annotations"])))
                assert used <= set(labels), f"{alert} annotations use {used - set(labels)}"
            cases.append(
                {
                    "eval_time": eval_time,
                    "alertname": alert,
                    "exp_alerts": [
                        {"exp_labels": {**labels, "severity": severity}} for labels in expected
                    ],
                }
            )
        tests.append(
            {
                "name": name,
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in scenario.series.items()],
                "alert_rule_test": cases,
            }
        )
    unit_file = tmp_path / "alerts-test.yml"
    unit_file.write_text(
        yaml.safe_dump(
            {"rule_files": [str(rule_copy)], "evaluation_interval": "1m", "tests": tests}
        )
    )
    result = run_promtool("test", "rules", str(unit_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# --- promtool on real scrapes -------------------------------------------------------------


def assert_promtool_accepts_metrics(text: str) -> None:
    result = run_promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n--- scrape ---\n{text}"


def test_promtool_accepts_the_scrape(service_scrape: str) -> None:
    assert "auth_logins_total{" in service_scrape
    assert_promtool_accepts_metrics(service_scrape)


# --- Real gunicorn, two workers, one multiprocess directory --------------------------------

WORKERS = 2
JWKS_REQUESTS = 40
FAILED_LOGINS = 30
METRICS_TOKEN = "metrics-token-for-the-gunicorn-test"  # noqa: S105 - test value
STARTUP_DEADLINE_S = 60.0
REQUEST_TIMEOUT_S = 15.0


@dataclass
class GunicornRun:
    """What one gunicorn run produced: its single scrape and each worker's own files."""

    scrape: str
    unauthenticated_status: int
    per_pid: dict[int, dict[str, float]]
    logs: str


def per_worker_values(metrics_dir: Path) -> dict[int, dict[str, float]]:
    """For each pid with files in the multiprocess directory: its own counts (not merged)."""
    files: dict[int, list[str]] = defaultdict(list)
    for path in metrics_dir.glob("*.db"):
        files[int(path.stem.rsplit("_", 1)[1])].append(str(path))  # counter_<pid>.db
    result: dict[int, dict[str, float]] = {}
    for pid, paths in files.items():
        counts: dict[str, float] = defaultdict(float)
        for metric in MultiProcessCollector.merge(paths, accumulate=True):
            for sample in metric.samples:
                labels = sample.labels
                if sample.name == "flask_http_request_duration_seconds_count":
                    counts[f"{labels['endpoint']} {labels['status']}"] += sample.value
                elif sample.name == "auth_logins_total":
                    counts[f"logins {labels['result']}"] += sample.value
        result[pid] = dict(counts)
    return result


@pytest.fixture(scope="module")
def gunicorn_run(app: Flask, signing_key_pem: str, tmp_path_factory: Any) -> GunicornRun:
    """Start gunicorn (2 workers), send the traffic, scrape /metrics once, stop.

    Depends on ``app``: its migrations built the schema in the per-run database the server
    uses, so the failed logins really reach the users table.
    """
    tmp_path = tmp_path_factory.mktemp("gunicorn-metrics")
    metrics_dir = tmp_path / "prometheus-multiproc"
    metrics_dir.mkdir()
    server = start_service(
        tmp_path,
        signing_key_pem,
        # one request per connection, so any worker may take it
        headers={"Connection": "close"},
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        METRICS_TOKEN=METRICS_TOKEN,
        GUNICORN_WORKERS=str(WORKERS),
        GUNICORN_MAX_REQUESTS="0",  # no worker recycling in the middle of the count
        # A worker holding 2 connections stops accepting, so with 8 concurrent clients the
        # other worker must take some: both workers serve, whatever the kernel's accept order.
        GUNICORN_CMD_ARGS="--worker-connections 2",
        GUNICORN_KEEPALIVE="0",  # every request closes its connection anyway
        RATELIMIT_ENABLED="false",
    )
    try:
        wait_for_worker_files(metrics_dir, WORKERS, server.logs)
        run_id = uuid.uuid4().hex[:8]

        def jwks(_: int) -> Answer:
            return server.call("GET", "/.well-known/jwks.json", timeout=REQUEST_TIMEOUT_S)

        def failed_login(n: int) -> Answer:
            # A new unknown address each time, so the per-account throttle never steps in.
            body = {"email": f"nobody-{run_id}-{n}@example.com", "password": PASSWORD}
            return server.call("POST", "/api/v1/auth/login", body=body, timeout=REQUEST_TIMEOUT_S)

        with ThreadPoolExecutor(max_workers=8) as pool:
            jwks_results = list(pool.map(jwks, range(JWKS_REQUESTS)))
            login_results = list(pool.map(failed_login, range(FAILED_LOGINS)))
        assert [answer.status for answer in jwks_results] == [200] * JWKS_REQUESTS, server.logs()
        assert [answer.status for answer in login_results] == [401] * FAILED_LOGINS, (
            [str(answer) for answer in login_results[:3]],
            server.logs(),
        )
        unauthenticated = server.call("GET", "/metrics", timeout=REQUEST_TIMEOUT_S).status
        scrape = server.call(
            "GET",
            "/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=REQUEST_TIMEOUT_S,
        )
        assert scrape.status == 200, scrape.body[:500]
        return GunicornRun(
            scrape.body.decode(), unauthenticated, per_worker_values(metrics_dir), server.logs()
        )
    finally:
        server.stop()


def worker_pids(metrics_dir: Path) -> set[int]:
    """Pids with files in the multiprocess directory (``counter_<pid>.db``, ...)."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("*.db")}


def wait_for_worker_files(metrics_dir: Path, count: int, logs: Any) -> None:
    """Wait until ``count`` workers have loaded the app (each writes its files while loading).

    /health/live answers as soon as one worker is up; traffic sent before the other finished
    loading would all go to the first one.
    """
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while len(worker_pids(metrics_dir)) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{count} workers not loaded within {STARTUP_DEADLINE_S}s\n{logs()}")
        time.sleep(0.1)


@pytest.mark.slow
def test_one_scrape_adds_up_every_gunicorn_worker_exactly(gunicorn_run: GunicornRun) -> None:
    text, per_pid = gunicorn_run.scrape, gunicorn_run.per_pid
    context = f"per worker: {per_pid}\n--- scrape ---\n{text}"

    # At least two workers served, each wrote its own files, and those add up exactly.
    served = {pid for pid, counts in per_pid.items() if counts}
    assert len(served) >= WORKERS, (
        f"only {len(served)} worker(s) served: {per_pid}\n{gunicorn_run.logs}"
    )
    # A worker that counted failed logins must have counted the login requests too; if not,
    # its request metrics were never hooked up (its exporter failed to register).
    for pid, counts in per_pid.items():
        logins = counts.get("logins invalid_credentials", 0.0)
        requests = counts.get("auth.login 401", 0.0)
        assert requests == logins, (
            f"worker {pid} counted {logins:g} failed logins but {requests:g} login requests: "
            f"its request metrics are not recorded. {context}"
        )

    for key, expected in (
        ("wellknown.jwks 200", JWKS_REQUESTS),
        ("auth.login 401", FAILED_LOGINS),
        ("logins invalid_credentials", FAILED_LOGINS),
    ):
        assert sum(counts.get(key, 0.0) for counts in per_pid.values()) == expected, (key, context)

    # The one scrape: /metrics sums every worker.
    def value(name: str, **labels: str) -> float:
        return sample_value(text, name, **labels)

    jwks = {"endpoint": "wellknown.jwks", "method": "GET", "status": "200"}
    login = {"endpoint": "auth.login", "method": "POST", "status": "401"}
    duration_count = "flask_http_request_duration_seconds_count"
    assert value(duration_count, **jwks) == JWKS_REQUESTS, context
    assert value(duration_count, **login) == FAILED_LOGINS, context
    # The request counter has no endpoint label; /health* and /metrics are excluded, so these
    # are exactly the requests above.
    assert value("flask_http_request_total", method="GET", status="200") == JWKS_REQUESTS, context
    assert value("flask_http_request_total", method="POST", status="401") == FAILED_LOGINS, context
    assert value("auth_logins_total", result="invalid_credentials") == FAILED_LOGINS, context


@pytest.mark.slow
def test_metrics_token_closes_the_gunicorn_endpoint(gunicorn_run: GunicornRun) -> None:
    assert gunicorn_run.unauthenticated_status == 401


@pytest.mark.slow
def test_promtool_accepts_the_multiprocess_scrape(gunicorn_run: GunicornRun) -> None:
    assert "auth_logins_total{" in gunicorn_run.scrape
    assert_promtool_accepts_metrics(gunicorn_run.scrape)
