"""The questions ``quarry config`` asks, in order: each a default read from the current configuration and
a parser that turns the answer into :class:`~quarry.deployment.wizard.Setting` values.

Data, not prompting: :mod:`quarry.cli_config` asks them and applies the settings through
:func:`quarry.deployment.wizard.configure`, so an answer is validated by ``DeployConfig`` like a ``--set``.
Only the choices that decide cost, safety or who can use the deployment are asked; everything else keeps
its value (``--set`` reaches any field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from quarry.deployment.config import DeployConfig
from quarry.deployment.wizard import Setting
from quarry.errors import InvalidInput

__all__ = ["QUESTIONS", "Question"]

Parser = Callable[[str], list[Setting]]

_YES = {"y", "yes", "true", "on", "1"}
_NO = {"n", "no", "false", "off", "0"}
_NONE = {"", "none", "off", "no"}


def _always(_config: DeployConfig) -> bool:
    return True


@dataclass(frozen=True)
class Question:
    """One prompt: ``label`` is asked, ``help`` says in one line what the choice does and costs."""

    label: str
    help: str
    default: Callable[[DeployConfig], str]
    parse: Parser
    applies: Callable[[DeployConfig], bool] = _always


def _path(key: str) -> tuple[str, ...]:
    return tuple(key.split("."))


def _text(key: str) -> Parser:
    return lambda answer: [Setting(_path(key), answer.strip())]


def _optional_text(key: str) -> Parser:
    return lambda answer: [Setting(_path(key), None if answer.strip().lower() in _NONE else answer.strip())]


def _integer(key: str, *, none_allowed: bool = False) -> Parser:
    def parse(answer: str) -> list[Setting]:
        text = answer.strip().lower().replace("_", "").replace(",", "")
        if none_allowed and text in _NONE:
            return [Setting(_path(key), None)]
        try:
            return [Setting(_path(key), int(text))]
        except ValueError:
            extra = " or 'none'" if none_allowed else ""
            raise InvalidInput(f"{key}: expected a whole number{extra}, got {answer!r}") from None

    return parse


def _boolean(key: str) -> Parser:
    def parse(answer: str) -> list[Setting]:
        text = answer.strip().lower()
        if text in _YES | _NO:
            return [Setting(_path(key), text in _YES)]
        raise InvalidInput(f"{key}: answer yes or no, got {answer!r}")

    return parse


def _choice(name: str, options: Mapping[str, Mapping[str, object]]) -> Parser:
    def parse(answer: str) -> list[Setting]:
        chosen = options.get(answer.strip().lower())
        if chosen is None:
            raise InvalidInput(f"{name}: choose one of {', '.join(options)}, got {answer!r}")
        return [Setting(_path(key), value) for key, value in chosen.items()]

    return parse


def _model_ids(answer: str) -> list[Setting]:
    ids = [part.strip() for part in answer.split(",") if part.strip()]
    return [Setting(("bedrock", "chat_model_ids"), ids)]


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _value(key: str) -> Callable[[DeployConfig], str]:
    def read(config: DeployConfig) -> str:
        value: object = config
        for name in _path(key):
            value = getattr(value, name)
        if value is None:
            return "none"
        return _yes_no(value) if isinstance(value, bool) else str(value)

    return read


_STORES: dict[str, dict[str, object]] = {
    "pgvector-data-api": {
        "aurora.enabled": True,
        "aurora.access": "data_api",
        "opensearch.enabled": False,
        "default_vector_index": None,
    },
    "pgvector-vpc": {
        "aurora.enabled": True,
        "aurora.access": "vpc",
        "opensearch.enabled": False,
        "default_vector_index": None,
    },
    "opensearch": {"aurora.enabled": False, "opensearch.enabled": True, "default_vector_index": None},
    "both": {"aurora.enabled": True, "opensearch.enabled": True},
}


def _store(config: DeployConfig) -> str:
    if config.aurora.enabled and config.opensearch.enabled:
        return "both"
    if config.opensearch.enabled:
        return "opensearch"
    return "pgvector-vpc" if config.aurora.access == "vpc" else "pgvector-data-api"


_ENDPOINTS: dict[str, dict[str, object]] = {
    "off": {"sagemaker.embedding_endpoint": False, "sagemaker.llm_endpoint": False},
    "embedding": {"sagemaker.embedding_endpoint": True, "sagemaker.llm_endpoint": False},
    "llm": {"sagemaker.embedding_endpoint": False, "sagemaker.llm_endpoint": True},
    "both": {"sagemaker.embedding_endpoint": True, "sagemaker.llm_endpoint": True},
}


def _endpoints(config: DeployConfig) -> str:
    sm = config.sagemaker
    return {(False, False): "off", (True, False): "embedding", (False, True): "llm"}.get(
        (sm.embedding_endpoint, sm.llm_endpoint), "both"
    )


_ROLLOUTS = {name: {"rollout.strategy": name} for name in ("all_at_once", "canary", "linear")}


def _shifting(config: DeployConfig) -> bool:
    return config.rollout.strategy != "all_at_once"


def _waf_on(config: DeployConfig) -> bool:
    return config.waf.enabled


QUESTIONS: tuple[Question, ...] = (
    Question(
        "Prefix",
        "Starts every resource name: lowercase letters, digits and dashes, 2 to 21 characters.",
        _value("prefix"),
        _text("prefix"),
    ),
    Question(
        "Stack name", "The CloudFormation stack that holds the deployment.", _value("stack_name"), _text("stack_name")
    ),
    Question(
        "Region",
        "AWS region to deploy to; the Bedrock models chosen below must be enabled there.",
        _value("region"),
        _text("region"),
    ),
    Question(
        "Data on destroy (retain/destroy)",
        "retain keeps buckets, tables, the database and the user pool when the stack is deleted; "
        "destroy is for trials.",
        _value("removal"),
        _choice("removal", {"retain": {"removal": "retain"}, "destroy": {"removal": "destroy"}}),
    ),
    Question(
        f"Vector store ({'/'.join(_STORES)})",
        "Aurora pgvector pauses at 0 ACU when idle (data-api: over HTTPS, no NAT; vpc: lower latency, a NAT "
        "instance); OpenSearch Serverless bills its OCUs around the clock.",
        _store,
        _choice("vector store", _STORES),
    ),
    Question(
        "Chat models (Bedrock ids, comma-separated)",
        "Offered in the UI's model picker; the first is the default. Priced per token.",
        lambda config: ", ".join(config.bedrock.chat_model_ids),
        _model_ids,
    ),
    Question(
        f"SageMaker endpoints ({'/'.join(_ENDPOINTS)})",
        "Self-hosted embedding and/or LLM endpoints instead of Bedrock: billed per instance-hour, always on.",
        _endpoints,
        _choice("sagemaker endpoints", _ENDPOINTS),
    ),
    Question(
        "Website crawler (yes/no)",
        "Lets users add websites as sources; the ingestion worker fetches the pages.",
        _value("ingestion.crawler"),
        _boolean("ingestion.crawler"),
    ),
    Question(
        "Alarm e-mail (or none)",
        "Receives the alarm notifications (confirm the subscription e-mail AWS sends).",
        _value("monitoring.alarm_email"),
        _optional_text("monitoring.alarm_email"),
    ),
    Question(
        "CloudWatch dashboard (yes/no)",
        "One dashboard of the deployment's metrics ($3/month beyond three dashboards per account).",
        _value("monitoring.dashboard"),
        _boolean("monitoring.dashboard"),
    ),
    Question(
        "Chat concurrency cap",
        "At most this many answers are generated at once: bounds Bedrock spend per minute (2 to 1000).",
        _value("spend.chat_max_concurrency"),
        _integer("spend.chat_max_concurrency"),
    ),
    Question(
        "Daily token budget per user (or none)",
        "Input + output tokens one user may spend per UTC day; past it, chat is refused until the next UTC day.",
        _value("spend.daily_token_budget_per_user"),
        _integer("spend.daily_token_budget_per_user", none_allowed=True),
    ),
    Question(
        f"Rollout ({'/'.join(_ROLLOUTS)})",
        "How a new version of the API and chat functions reaches users; canary and linear shift traffic "
        "gradually and roll back on error alarms.",
        _value("rollout.strategy"),
        _choice("rollout", _ROLLOUTS),
    ),
    Question(
        "Traffic percent per step",
        "canary: the share the new version gets first; linear: the share added every interval.",
        _value("rollout.percent"),
        _integer("rollout.percent"),
        _shifting,
    ),
    Question(
        "Minutes per step",
        "How long each step runs before the next (canary: before the rest of the traffic moves).",
        _value("rollout.interval_minutes"),
        _integer("rollout.interval_minutes"),
        _shifting,
    ),
    Question(
        "AWS WAF (yes/no)",
        "A web ACL on the REST API and the UI: AWS managed common rules, IP reputation, a per-IP rate limit; "
        "billed per web ACL, rule and request.",
        _value("waf.enabled"),
        _boolean("waf.enabled"),
    ),
    Question(
        "Requests per client IP per 5 minutes",
        "WAF blocks an IP above this rate.",
        _value("waf.rate_limit_per_5_minutes"),
        _integer("waf.rate_limit_per_5_minutes"),
        _waf_on,
    ),
    Question(
        "WAF on CloudFront too (yes/no)",
        "Also protect the UI's CloudFront distribution (its web ACL lives in us-east-1).",
        _value("waf.cloudfront"),
        _boolean("waf.cloudfront"),
        _waf_on,
    ),
)
