"""One synthesized configuration, stood up for the rehearsal: its resources in moto, its functions as Lambda
runs them, the AWS APIs moto lacks on loopback, and a record of every AWS call each function made."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.rehearsal.cloud import Cloud
from tests.rehearsal.dockerfile_check import ImageRoot
from tests.rehearsal.iam_check import ApiCall, Denial, check_calls, statements_of_role
from tests.rehearsal.lambdas import FunctionFailed, Invocation, LambdaProcess, lambda_environment, python_for
from tests.rehearsal.template import ACCOUNT, REGION, CloudAssembly, FunctionDef
from tests.rehearsal.wire import DataApi, ManagementApi, ModelApis

__all__ = ["JOB", "Rehearsal", "Servers"]

CONTAINER = Path(__file__).with_name("runtime") / "container.py"
JOB = "batch-job"  # the caller name of the Batch job's AWS calls


@dataclass
class Servers:
    """What stands in for AWS on loopback, shared by the configurations."""

    moto: str
    management: ManagementApi
    models: ModelApis
    data_api: DataApi

    def routes(self) -> list[tuple[str, str]]:
        return [
            (r"\.execute-api\.", self.management.url),
            (r"^bedrock-runtime\.", self.models.url),
            (r"^bedrock-agent-runtime\.", self.models.url),
            (r"^runtime\.sagemaker\.", self.models.url),
            (r"^rds-data\.", self.data_api.url),
            (r"\.amazonaws\.com$", self.moto),
        ]


@dataclass
class Rehearsal:
    assembly: CloudAssembly
    cloud: Cloud
    servers: Servers
    workdir: Path
    runtime_packages: Path | None = None
    template: dict[str, Any] = field(init=False)
    functions: dict[str, FunctionDef] = field(init=False)
    calls: dict[str, list[ApiCall]] = field(default_factory=lambda: defaultdict(list))
    roles: dict[str, str] = field(default_factory=dict)  # caller (function or job) -> its role's logical id
    _processes: dict[str, LambdaProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.template = self.cloud.template  # type: ignore[assignment]
        self.functions = {
            name: fn
            for name, fn in self.assembly.functions(self.template).items()
            if (fn.code_dir / "handler.py").is_file()
        }
        self.roles = {name: fn.role_logical_id for name, fn in self.functions.items()}

    # ------------------------------------------------------------------ functions

    def name(self, short: str) -> str:
        """The deployed name of a handler folder under lambdas/ (``chat_worker`` -> ``quarry-chat-worker``)."""
        wanted = short.replace("_", "-")
        for name in self.functions:
            if name.endswith("-" + wanted):
                return name
        raise KeyError(f"no function for {short} in the template")

    def environment(self, fn: FunctionDef) -> dict[str, str]:
        variables = {key: str(self.cloud.resolver(value)) for key, value in fn.environment.items()}
        credentials = {
            "AWS_ACCESS_KEY_ID": "ASIAREHEARSAL" + fn.logical_id[:7].upper(),
            "AWS_SECRET_ACCESS_KEY": "rehearsal",
            "AWS_SESSION_TOKEN": f"rehearsal-session-of-{fn.role_logical_id}",
        }
        return lambda_environment(fn, variables, credentials)

    def process(self, short: str) -> LambdaProcess:
        name = self.name(short)
        if name not in self._processes:
            fn = self.functions[name]
            self._processes[name] = LambdaProcess(
                fn=fn,
                python=python_for(fn.runtime),
                environment=self.environment(fn),
                routes=self.servers.routes(),
                runtime_packages=self.runtime_packages,
                log_file=self.workdir / f"{name}.log",
            ).start()
            self.calls[name] += [
                ApiCall(**c, account="123456789012") for c in self._processes[name].init.get("calls", [])
            ]
        return self._processes[name]

    def invoke(self, short: str, event: Mapping[str, Any], *, check: bool = True) -> Invocation:
        process = self.process(short)
        invocation = process.invoke(event)
        self.calls[process.fn.name] += invocation.calls
        if check and not invocation.ok:
            raise FunctionFailed(f"{process.fn.name} failed: {invocation.error}\n--- its log ---\n{process.log_tail()}")
        return invocation

    def denials(self) -> list[Denial]:
        """Every recorded call that the calling function's own role does not allow."""
        out: list[Denial] = []
        for name, calls in self.calls.items():
            statements = statements_of_role(self.template, self.roles[name], self.cloud.resolver)
            out += check_calls(name, calls, statements)
        return out

    def close(self) -> None:
        for process in self._processes.values():
            process.stop()

    # ------------------------------------------------------------------ the Batch job

    def job_definition(self) -> dict[str, Any]:
        for resource in self.template["Resources"].values():
            if resource["Type"] == "AWS::Batch::JobDefinition":
                return dict(self.cloud.resolver(resource["Properties"]))
        raise KeyError("no Batch job definition in the template")

    def job_role(self) -> str:
        """The logical id of the role the job's container runs under (``JobRoleArn``)."""
        for resource in self.template["Resources"].values():
            if resource["Type"] == "AWS::Batch::JobDefinition":
                container = resource["Properties"]["ContainerProperties"]
                return str(container["JobRoleArn"]["Fn::GetAtt"][0])
        raise KeyError("no Batch job definition in the template")

    def job_environment(self, overrides: Mapping[str, str]) -> dict[str, str]:
        """The container's environment as Batch starts it: the job definition's, then the submit's overrides."""
        definition = self.job_definition()
        container = definition["ContainerProperties"]
        env = {item["Name"]: item["Value"] for item in container.get("Environment", [])}
        return {
            **env,
            **overrides,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_BATCH_JOB_ID": "rehearsal-job",
            "AWS_ACCESS_KEY_ID": "ASIAREHEARSALBATCH",
            "AWS_SECRET_ACCESS_KEY": "rehearsal",
            "AWS_SESSION_TOKEN": "rehearsal-batch-job-role",
        }

    def run_job(self, image: ImageRoot, overrides: Mapping[str, str], log: Path, timeout: float = 600) -> int:
        """The image's entry point as its container runs it (its interpreter, environment and workdir), on the
        rehearsal's network; its AWS calls are kept under ``batch-job`` for the IAM check against its role."""
        argv = list(image.entrypoint)
        if argv[1:2] != ["-m"]:
            raise ValueError(f"the rehearsal runs `python -m <module>` entry points, not {argv}")
        calls_file = log.with_suffix(".calls.json")
        env = image.environment(
            {
                **self.job_environment(overrides),
                "REHEARSAL_ROUTES": json.dumps(self.servers.routes()),
                "REHEARSAL_CALLS_FILE": str(calls_file),
            }
        )
        with log.open("ab") as out:
            code = subprocess.run(
                [argv[0], str(CONTAINER), *argv[1:]],
                cwd=image.workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            ).returncode
        if calls_file.is_file():
            self.calls[JOB] += [ApiCall(**c, account=ACCOUNT) for c in json.loads(calls_file.read_text())]
            self.roles[JOB] = self.job_role()
        return code
