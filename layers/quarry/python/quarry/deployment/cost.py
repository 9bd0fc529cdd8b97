"""``quarry cost``: an itemised monthly estimate for a deployment configuration.

Three views: what the deployment costs **idle** (nobody uses it for a month), and the marginal cost
**per 1,000 chats** and **per 1,000 documents** ingested. Always-on pieces (OpenSearch Serverless OCUs,
SageMaker instances, NAT, interface endpoints) show up in the idle view, so an expensive setting is
visible before it is deployed. Prices are us-east-1 list prices in :data:`PRICES` (one table, dated);
per-token model prices come from :mod:`quarry.pricing`, which the runtime prices each answer with;
usage assumptions are in :class:`Workload`. Estimates, not a bill: taxes, free tiers and data transfer
beyond what is listed are left out.

The per-1,000-chats view comes with its **bounds** (:class:`Bound`): what the chat concurrency cap and each
user's daily token budget (``spend`` in the deploy configuration) let chat spend at most.

Usage: ``quarry cost [--config FILE] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quarry.deployment.config import ROLLOUT_FUNCTIONS, DeployConfig, load_config
from quarry.deployment.waf import web_acl_plans
from quarry.errors import InvalidInput
from quarry.pricing import PRICES_AS_OF, TOKEN_PRICES_1K, base_model_id

__all__ = [
    "HOURS_PER_MONTH",
    "PRICES",
    "PRICES_AS_OF",
    "Bound",
    "Estimate",
    "LineItem",
    "Workload",
    "estimate",
    "main",
    "render",
]

HOURS_PER_MONTH = 730

# us-east-1 on-demand list prices in USD.
PRICES: dict[str, Any] = {
    "aurora_acu_hour": 0.12,
    "aurora_storage_gb_month": 0.10,
    "aurora_io_per_million": 0.20,
    "rds_data_api_per_million": 0.35,
    "secret_month": 0.40,
    "kms_key_month": 1.00,
    "nat_gateway_hour": 0.045,
    "nat_gateway_gb": 0.045,
    "public_ipv4_hour": 0.005,
    "ec2_hour": {"t4g.nano": 0.0042, "t4g.micro": 0.0084, "t4g.small": 0.0168, "t3.nano": 0.0052, "t3.micro": 0.0104},
    "ebs_gp3_gb_month": 0.08,
    "interface_endpoint_hour_per_az": 0.01,
    "aoss_ocu_hour": 0.24,
    "aoss_storage_gb_month": 0.024,
    "sagemaker_instance_hour": {
        "ml.t2.medium": 0.056,
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.c5.large": 0.102,
        "ml.c5.xlarge": 0.204,
        "ml.g4dn.xlarge": 0.7364,
        "ml.g5.xlarge": 1.408,
        "ml.g5.2xlarge": 1.515,
        "ml.g6.xlarge": 1.1644,
    },
    # (input, output) per 1,000 tokens: the runtime prices each answer from the same table
    "bedrock_tokens_1k": TOKEN_PRICES_1K,
    "bedrock_rerank_1k_queries": {"cohere.rerank-v3-5:0": 2.00, "amazon.rerank-v1:0": 1.00},
    "lambda_gb_second": 0.0000166667,
    "lambda_per_million": 0.20,
    "rest_api_per_million": 3.50,
    "ws_messages_per_million": 1.00,
    "ws_connection_minutes_per_million": 0.25,
    "sns_per_million": 0.50,
    "sqs_per_million": 0.40,
    "dynamodb_write_per_million": 0.625,
    "dynamodb_read_per_million": 0.125,
    "sfn_per_1k_transitions": 0.025,
    "fargate_vcpu_hour": 0.04048,
    "fargate_gb_hour": 0.004445,
    "fargate_spot_factor": 0.30,  # Fargate Spot runs at about 70% off
    "s3_gb_month": 0.023,
    "s3_put_per_1k": 0.005,
    "s3_get_per_1k": 0.0004,
    "cw_dashboard_month": 3.00,
    "cw_alarm_month": 0.10,
    "cw_logs_gb": 0.50,
    "ecr_gb_month": 0.10,
    # AWS WAF, the same in every region: a month per web ACL and per rule (an AWS managed rule group counts as
    # one rule and adds no fee of its own), and per million requests inspected
    "waf_web_acl_month": 5.00,
    "waf_rule_month": 1.00,
    "waf_per_million_requests": 0.60,
}


@dataclass(frozen=True)
class Workload:
    """Usage assumptions behind the per-1,000 figures (override any with ``--workload KEY=VALUE``)."""

    prompt_tokens: int = 2500  # question, condensed history, 5 sources
    completion_tokens: int = 350
    query_tokens: int = 60
    tokens_per_ws_message: int = 3  # streamed token events are small batches
    chat_worker_seconds: float = 8.0
    data_api_calls_per_chat: int = 3  # dense + keyword search, and a follow-up's condensed search now and then
    chats_per_session: int = 20  # Aurora wakes once per session, then pauses after auto_pause_minutes
    chat_log_kb: float = 6.0
    document_mb: float = 1.0
    document_tokens: int = 12000  # about 20 pages
    aurora_ingest_acu: float = 2.0
    db_share_of_job: float = 0.25  # part of a job's time spent writing chunks (the rest: parse, embed)
    ecr_image_gb: float = 2.5
    # Requests a web ACL inspects (waf.enabled): the answer itself streams over the WebSocket, which WAF never sees
    rest_requests_per_chat: float = 1.0  # the UI refreshes the session list
    rest_requests_per_document: float = 2.0  # upload URL, then the document list
    ui_requests_per_session: float = 6.0  # page, config.json, scripts and styles from CloudFront


@dataclass(frozen=True)
class LineItem:
    component: str
    item: str
    usd: float
    note: str = ""


@dataclass(frozen=True)
class Bound:
    """A limit the deployment puts on chat spend, and the most it lets through (None: not priced per token)."""

    name: str
    limit: str
    usd_per_day: float | None = None
    usd_per_month: float | None = None
    note: str = ""


@dataclass
class Estimate:
    prices_as_of: str
    region: str
    idle: list[LineItem] = field(default_factory=list)
    per_1000_chats: list[LineItem] = field(default_factory=list)
    per_1000_documents: list[LineItem] = field(default_factory=list)
    chat_bounds: list[Bound] = field(default_factory=list)

    @staticmethod
    def total(items: list[LineItem]) -> float:
        return round(sum(i.usd for i in items), 2)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prices_as_of": self.prices_as_of, "region": self.region, "currency": "USD"}
        for name in ("idle", "per_1000_chats", "per_1000_documents"):
            items: list[LineItem] = getattr(self, name)
            out[name] = {"total": self.total(items), "items": [asdict(i) | {"usd": round(i.usd, 4)} for i in items]}
        out["per_1000_chats"]["bounds"] = [asdict(b) for b in self.chat_bounds]
        return out


def _price(table: str, key: str) -> Any:
    prices = PRICES[table]
    base = base_model_id(key)
    if base not in prices:
        where = "quarry/pricing.py" if table == "bedrock_tokens_1k" else "quarry/deployment/cost.py"
        raise InvalidInput(f"no price for {key!r} in PRICES[{table!r}] ({where}); add it to estimate")
    return prices[base]


def _monthly(hourly: float) -> float:
    return hourly * HOURS_PER_MONTH


# ---------------------------------------------------------------------------------------------- idle


def _idle_network(config: DeployConfig) -> list[LineItem]:
    items: list[LineItem] = []
    nat = config.nat_kind
    ipv4 = _monthly(PRICES["public_ipv4_hour"])
    if nat == "gateway":
        items.append(LineItem("network", "NAT gateway", _monthly(PRICES["nat_gateway_hour"]) + ipv4, "+ $0.045/GB"))
    elif nat == "instance":
        kind = config.network.nat_instance_type
        instance = _monthly(_price("ec2_hour", kind)) + 8 * PRICES["ebs_gp3_gb_month"] + ipv4
        items.append(LineItem("network", f"NAT instance {kind}", instance, "instance, 8 GB gp3, public IPv4"))
    if config.network.interface_endpoints and config.lambdas_in_vpc:
        n = 2 + int(config.bedrock.enabled) + int(config.sagemaker.embedding_endpoint or config.sagemaker.llm_endpoint)
        usd = n * config.network.max_azs * _monthly(PRICES["interface_endpoint_hour_per_az"])
        items.append(LineItem("network", f"{n} interface endpoints x {config.network.max_azs} AZ", usd))
    return items


def _idle_stores(config: DeployConfig) -> list[LineItem]:
    items: list[LineItem] = []
    a = config.aurora
    if a.enabled:
        items.append(
            LineItem(
                "aurora",
                f"storage {a.storage_gb_estimate:g} GB",
                a.storage_gb_estimate * PRICES["aurora_storage_gb_month"],
            )
        )
        if a.min_capacity > 0:
            always = a.min_capacity * _monthly(PRICES["aurora_acu_hour"])
            items.append(LineItem("aurora", f"minimum capacity {a.min_capacity:g} ACU, always on", always))
        else:
            items.append(LineItem("aurora", "compute while paused (0 ACU)", 0.0, "auto-pause"))
        items.append(LineItem("aurora", "credentials secret", PRICES["secret_month"]))
    o = config.opensearch
    if o.enabled:
        ocus = 2.0 if o.standby_replicas else 1.0
        items.append(
            LineItem(
                "opensearch",
                f"Serverless {ocus:g} OCU minimum (indexing + search)",
                ocus * _monthly(PRICES["aoss_ocu_hour"]),
                "billed around the clock",
            )
        )
        items.append(
            LineItem(
                "opensearch",
                f"index storage {o.storage_gb_estimate:g} GB",
                o.storage_gb_estimate * PRICES["aoss_storage_gb_month"],
            )
        )
    return items


def _idle_models(config: DeployConfig) -> list[LineItem]:
    items: list[LineItem] = []
    sm = config.sagemaker
    for enabled, name, spec in (
        (sm.embedding_endpoint, "embedding + cross-encoder endpoint", sm.embedding),
        (sm.llm_endpoint, "LLM endpoint", sm.llm),
    ):
        if enabled:
            hourly = _price("sagemaker_instance_hour", spec.instance_type) * spec.instance_count
            label = f"{name} {spec.instance_count} x {spec.instance_type}"
            items.append(LineItem("sagemaker", label, _monthly(hourly), "billed around the clock"))
    if config.bedrock.enabled:
        items.append(LineItem("bedrock", "on-demand models", 0.0, "pay per token"))
    return items


def _alarm_count(config: DeployConfig) -> int:
    essential = 2 + 1 + 2  # DLQs, API 5xx, state machines
    rollback = len(ROLLOUT_FUNCTIONS) if config.rollout.gradual else 0  # the new version's errors, per function
    if not config.monitoring.function_alarms:
        return essential + rollback
    return essential + rollback + (11 if config.aurora.enabled else 10)  # + Lambda errors, one per function


def _idle_platform(config: DeployConfig, work: Workload) -> list[LineItem]:
    items = [LineItem("security", "KMS key (topics)", PRICES["kms_key_month"])]
    if config.monitoring.dashboard:
        items.append(LineItem("monitoring", "CloudWatch dashboard", PRICES["cw_dashboard_month"], "free if <= 3"))
    alarms = _alarm_count(config)
    items.append(LineItem("monitoring", f"{alarms} alarms", alarms * PRICES["cw_alarm_month"]))
    rollout = config.rollout
    if rollout.gradual:
        n = len(ROLLOUT_FUNCTIONS)
        label = f"CodeDeploy {rollout.strategy} {rollout.percent}% / {rollout.interval_minutes} min, {n} functions"
        items.append(LineItem("rollout", label, 0.0, f"free for Lambda; its {n} rollback alarms are counted above"))
    items.append(LineItem("ingestion", "ECR worker image", work.ecr_image_gb * PRICES["ecr_gb_month"]))
    items.append(LineItem("serverless", "Lambda, API Gateway, SQS, SNS, Step Functions, DynamoDB", 0.0, "pay per use"))
    return items


# ---------------------------------------------------------------------------------------------- usage


def _bedrock_tokens(model_id: str, tokens_in: float, tokens_out: float) -> float:
    price_in, price_out = _price("bedrock_tokens_1k", model_id)
    return float(tokens_in / 1000 * price_in + tokens_out / 1000 * price_out)


def _per_chats(config: DeployConfig, w: Workload, n: int = 1000) -> list[LineItem]:
    items: list[LineItem] = []
    b = config.bedrock
    if config.chat_model == "bedrock":
        model = b.chat_model_ids[0]
        usd = n * _bedrock_tokens(model, w.prompt_tokens, w.completion_tokens)
        items.append(LineItem("bedrock", f"LLM {model}", usd, f"{w.prompt_tokens} in / {w.completion_tokens} out"))
    else:
        items.append(LineItem("sagemaker", "LLM endpoint", 0.0, "in the endpoint-hours"))
    if config.embedder == "bedrock":
        usd = n * _bedrock_tokens(b.embedding_model_id, 2 * w.query_tokens, 0)
        items.append(LineItem("bedrock", f"query embeddings {b.embedding_model_id}", usd))
    if config.reranker == "bedrock" and b.rerank_model_id:
        items.append(
            LineItem(
                "bedrock",
                f"rerank {b.rerank_model_id}",
                n / 1000 * _price("bedrock_rerank_1k_queries", b.rerank_model_id),
            )
        )
    gb_s = n * (1.0 * w.chat_worker_seconds + 0.5 * 0.3)
    requests = n * 2
    items.append(
        LineItem(
            "lambda",
            "chat_worker + ws_message",
            gb_s * PRICES["lambda_gb_second"] + requests / 1e6 * PRICES["lambda_per_million"],
        )
    )
    ws_messages = n * (2 + w.completion_tokens / w.tokens_per_ws_message)
    items.append(LineItem("api", "WebSocket messages", ws_messages / 1e6 * PRICES["ws_messages_per_million"]))
    bus = n * (PRICES["sns_per_million"] + 3 * PRICES["sqs_per_million"]) / 1e6
    items.append(LineItem("messaging", "SNS publish + SQS", bus))
    # + usage counters: one transaction (guard + user and workspace counters) at 2 write units per item
    ddb = n * ((6 + 6) * PRICES["dynamodb_write_per_million"] + 12 * PRICES["dynamodb_read_per_million"]) / 1e6
    items.append(LineItem("dynamodb", "sessions, messages, connections, usage counters", ddb))
    if config.vector_index == "pgvector":
        wake_hours = n / w.chats_per_session * config.aurora.auto_pause_minutes / 60 + n * w.chat_worker_seconds / 3600
        acu = max(config.aurora.min_capacity, 0.5)
        items.append(
            LineItem(
                "aurora", f"awake at {acu:g} ACU", wake_hours * acu * PRICES["aurora_acu_hour"], "incl. pause delay"
            )
        )
        if config.aurora.access == "data_api":
            calls = n * w.data_api_calls_per_chat
            usd = calls / 1e6 * PRICES["rds_data_api_per_million"]
            items.append(LineItem("aurora", "RDS Data API calls", usd, f"{w.data_api_calls_per_chat} per chat"))
    items.append(LineItem("monitoring", "logs", n * w.chat_log_kb / 1e6 * PRICES["cw_logs_gb"]))
    return items


def _chat_bounds(config: DeployConfig, w: Workload, per_1000_chats: float) -> list[Bound]:
    """What the spend settings let chat cost at most: the whole deployment at the concurrency cap (every worker
    busy around the clock), and one user spending the whole daily token budget on the default chat model."""
    cap = config.spend.chat_max_concurrency
    chats_per_hour = cap * 3600 / w.chat_worker_seconds
    hourly = chats_per_hour / 1000 * per_1000_chats
    bounds = [
        Bound(
            "chat concurrency",
            f"at most {cap} chats answered at once (spend.chat_max_concurrency)",
            hourly * 24,
            hourly * HOURS_PER_MONTH,
            f"~{chats_per_hour:,.0f} chats/hour at {w.chat_worker_seconds:g} s each, more wait in the queue; "
            "POST /chat is bounded by the REST throttle",
        )
    ]
    budget = config.spend.daily_token_budget_per_user
    if budget is None:
        none = Bound("token budget", "none (spend.daily_token_budget_per_user)", note="a user's tokens are unbounded")
        return [*bounds, none]
    limit = f"{budget:,} tokens per user per day (spend.daily_token_budget_per_user)"
    if config.chat_model != "bedrock":
        return [*bounds, Bound("token budget", limit, note="the SageMaker LLM is billed by the hour, not per token")]
    model = config.bedrock.chat_model_ids[0]
    chat_tokens = w.prompt_tokens + w.completion_tokens
    # The cap: every token at the dearer (output) price. What the workload's mix would spend goes in the note.
    ceiling = budget / 1000 * max(_price("bedrock_tokens_1k", model))
    typical = budget * _bedrock_tokens(model, w.prompt_tokens, w.completion_tokens) / chat_tokens
    note = (
        f"at {model} prices; ~{budget / chat_tokens:,.0f} chats/day, "
        f"${typical:,.2f}/day at {w.prompt_tokens} in / {w.completion_tokens} out per chat"
    )
    return [*bounds, Bound("token budget", limit, ceiling, ceiling * HOURS_PER_MONTH / 24, note)]


def _per_documents(config: DeployConfig, w: Workload, n: int = 1000) -> list[LineItem]:
    items: list[LineItem] = []
    ing = config.ingestion
    hours = n * ing.seconds_per_document_estimate / 3600
    fargate = hours * (ing.vcpu * PRICES["fargate_vcpu_hour"] + ing.memory_mib / 1024 * PRICES["fargate_gb_hour"])
    if ing.spot:
        fargate *= PRICES["fargate_spot_factor"]
    label = f"Fargate{' Spot' if ing.spot else ''} {ing.vcpu:g} vCPU / {ing.memory_mib} MiB"
    items.append(LineItem("batch", label, fargate, f"{ing.seconds_per_document_estimate:g} s per document"))
    items.append(LineItem("batch", "public IPv4 while tasks run", hours * PRICES["public_ipv4_hour"]))
    if config.embedder == "bedrock":
        usd = n * _bedrock_tokens(config.bedrock.embedding_model_id, w.document_tokens, 0)
        items.append(
            LineItem("bedrock", f"embeddings {config.bedrock.embedding_model_id}", usd, f"{w.document_tokens} tokens")
        )
    else:
        items.append(LineItem("sagemaker", "embeddings", 0.0, "in the endpoint-hours"))
    items.append(LineItem("workflow", "Step Functions transitions", n * 6 / 1000 * PRICES["sfn_per_1k_transitions"]))
    lam = n * (3 * 0.5 * 0.5 + 0.5 * 0.5) * PRICES["lambda_gb_second"] + n * 4 / 1e6 * PRICES["lambda_per_million"]
    items.append(LineItem("lambda", "ingest_trigger + ingest_status", lam))
    s3 = n * (3 * PRICES["s3_put_per_1k"] + 3 * PRICES["s3_get_per_1k"]) / 1000
    items.append(LineItem("s3", "requests", s3))
    items.append(
        LineItem("s3", "storage per month", n * w.document_mb * 2 / 1024 * PRICES["s3_gb_month"], "upload + chunks")
    )
    items.append(LineItem("dynamodb", "document records", n * 10 * PRICES["dynamodb_write_per_million"] / 1e6))
    if config.vector_index == "pgvector":
        acu_hours = hours * w.db_share_of_job * w.aurora_ingest_acu
        label = f"awake while writing chunks (~{w.aurora_ingest_acu:g} ACU)"
        items.append(LineItem("aurora", label, acu_hours * PRICES["aurora_acu_hour"]))
    return items


# ---------------------------------------------------------------------------------------------- WAF


def _idle_waf(config: DeployConfig) -> list[LineItem]:
    return [
        LineItem(
            "waf",
            f"{plan.scope.lower()} web ACL, {plan.rule_count} rules ({plan.attached_to})",
            PRICES["waf_web_acl_month"] + plan.rule_count * PRICES["waf_rule_month"],
        )
        for plan in web_acl_plans(config)
    ]


def _waf_requests(config: DeployConfig, *, api: float, ui_only: float) -> list[LineItem]:
    """WAF's charge for the requests each web ACL inspects. ``api`` requests pass the UI's distribution (``/api/*``)
    and then the REST stage, so both web ACLs inspect them; ``ui_only`` (static files) only the CloudFront one."""
    plans = web_acl_plans(config)
    if not plans:
        return []
    inspected = sum(api + (ui_only if plan.scope == "CLOUDFRONT" else 0) for plan in plans)
    usd = inspected / 1e6 * PRICES["waf_per_million_requests"]
    return [LineItem("waf", "requests inspected", usd, f"{inspected:,.0f} across {len(plans)} web ACLs")]


def _waf_per_chats(config: DeployConfig, w: Workload, n: int = 1000) -> list[LineItem]:
    return _waf_requests(
        config, api=n * w.rest_requests_per_chat, ui_only=n / w.chats_per_session * w.ui_requests_per_session
    )


def _waf_per_documents(config: DeployConfig, w: Workload, n: int = 1000) -> list[LineItem]:
    return _waf_requests(config, api=n * w.rest_requests_per_document, ui_only=0)


def estimate(config: DeployConfig, workload: Workload | None = None) -> Estimate:
    w = workload or Workload()
    chats = [*_per_chats(config, w), *_waf_per_chats(config, w)]
    return Estimate(
        prices_as_of=PRICES_AS_OF,
        region=config.region,
        idle=[
            *_idle_network(config),
            *_idle_stores(config),
            *_idle_models(config),
            *_idle_platform(config, w),
            *_idle_waf(config),
        ],
        per_1000_chats=chats,
        per_1000_documents=[*_per_documents(config, w), *_waf_per_documents(config, w)],
        chat_bounds=_chat_bounds(config, w, Estimate.total(chats)),
    )


# ---------------------------------------------------------------------------------------------- CLI


def render(est: Estimate) -> str:
    lines = [f"Quarry monthly estimate ({est.region}, list prices as of {est.prices_as_of}, USD)"]
    for title, items in (
        ("Idle (per month)", est.idle),
        ("Per 1,000 chats", est.per_1000_chats),
        ("Per 1,000 documents", est.per_1000_documents),
    ):
        lines += ["", f"{title}: {est.total(items):,.2f}"]
        for i in items:
            note = f"  ({i.note})" if i.note else ""
            lines.append(f"  {i.component:<11} {i.item:<52} {i.usd:>10,.2f}{note}")
        if items is est.per_1000_chats:
            lines += _render_bounds(est.chat_bounds)
    return "\n".join(lines)


def _render_bounds(bounds: list[Bound]) -> list[str]:
    lines = ["  bounded by:"] if bounds else []
    for b in bounds:
        spend = "" if b.usd_per_day is None else f": at most ${b.usd_per_day:,.2f}/day, ${b.usd_per_month:,.2f}/month"
        note = f"  ({b.note})" if b.note else ""
        lines.append(f"    {b.name:<17} {b.limit}{spend}{note}")
    return lines


def _workload(pairs: Sequence[str]) -> Workload:
    values: dict[str, Any] = {}
    fields = Workload.__dataclass_fields__
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in fields:
            raise InvalidInput(f"--workload expects KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        try:
            values[key] = type(getattr(Workload(), key))(raw)
        except ValueError as exc:
            raise InvalidInput(f"--workload {key}: {exc}") from exc
    return Workload(**values)


def _context(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        context = json.loads(path.read_text(encoding="utf-8")).get("context", {}).get("quarry", {})
    except (ValueError, AttributeError) as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
    return context if isinstance(context, dict) else {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quarry cost", description="Itemised monthly AWS estimate for a deployment.")
    parser.add_argument("--config", help="deploy config file (JSON, TOML or YAML) overlaid on cdk.json")
    parser.add_argument("--cdk-json", default="cdk.json", help="cdk.json whose context.quarry is the base config")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--workload", action="append", default=[], metavar="KEY=VALUE", help="usage assumption")
    args = parser.parse_args(argv)
    try:
        config = load_config(_context(Path(args.cdk_json)), args.config)
        est = estimate(config, _workload(args.workload))
    except InvalidInput as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(est.to_dict(), indent=2) if args.json else render(est))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
