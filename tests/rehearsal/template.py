"""A synthesized CloudFormation template read as CloudFormation reads it.

:class:`CloudAssembly` finds a stack's template and its staged assets in a ``cdk.out`` folder (the
``*.assets.json`` manifest maps each asset hash to the folder CDK staged). :class:`Resolver` evaluates the
template's intrinsic functions (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``,
``Fn::Split``, ``Fn::If`` on conditions, pseudo parameters) against the physical ids and attributes of the
rehearsal's resources, so a function's environment is exactly what CloudFormation would hand Lambda.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CloudAssembly", "FunctionDef", "Resolver", "UnresolvedReference"]

ACCOUNT = "123456789012"
REGION = "us-east-1"


class UnresolvedReference(LookupError):
    """A reference to a resource or attribute the rehearsal did not create: the template needs a resource it
    does not hold, or the rehearsal must learn the resource type."""


@dataclass(frozen=True)
class FunctionDef:
    logical_id: str
    name: str  # FunctionName, else the logical id
    handler: str
    runtime: str
    memory_mb: int
    timeout_s: int
    environment: Mapping[str, Any]  # raw, with intrinsics
    code_dir: Path  # the staged code asset (what Lambda unzips to /var/task)
    layer_dirs: tuple[Path, ...]  # staged layer assets (what Lambda unzips to /opt)
    role_logical_id: str


@dataclass
class CloudAssembly:
    """One stack of a synthesized cloud assembly (``cdk.out``)."""

    outdir: Path
    stack: str

    @property
    def template(self) -> dict[str, Any]:
        return dict(json.loads((self.outdir / f"{self.stack}.template.json").read_text()))

    @property
    def assets(self) -> dict[str, Any]:
        return dict(json.loads((self.outdir / f"{self.stack}.assets.json").read_text()))

    def file_asset_dir(self, object_key: str) -> Path:
        """The staged folder of the file asset published under S3 key ``object_key`` (``<hash>.zip``)."""
        for asset in self.assets.get("files", {}).values():
            for destination in asset["destinations"].values():
                if destination["objectKey"] == object_key:
                    return self.outdir / asset["source"]["path"]
        raise UnresolvedReference(f"no staged file asset for S3 key {object_key}")

    def model_archive(self) -> Path:
        """The staged ``model.tar.gz`` file asset (the SageMaker embedding endpoint's model data)."""
        archives = [
            self.outdir / asset["source"]["path"]
            for asset in self.assets.get("files", {}).values()
            if asset["source"].get("packaging") == "file" and asset["source"]["path"].endswith((".tar.gz", ".gz"))
        ]
        if len(archives) != 1:
            raise UnresolvedReference(f"expected one staged model archive, found {archives}")
        return archives[0]

    def docker_images(self) -> list[tuple[Path, str]]:
        """Each Docker image asset: (its staged build context, its Dockerfile path inside it)."""
        out = []
        for asset in self.assets.get("dockerImages", {}).values():
            source = asset["source"]
            out.append((self.outdir / source["directory"], source.get("dockerFile", "Dockerfile")))
        return out

    def functions(self, template: Mapping[str, Any] | None = None) -> dict[str, FunctionDef]:
        """Every ``AWS::Lambda::Function`` with its code and layers located in the assembly, by function name."""
        template = template or self.template
        resources = template["Resources"]
        out: dict[str, FunctionDef] = {}
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            props = resource["Properties"]
            code = props["Code"]
            if "S3Key" not in code:  # inline code (CDK's own helpers, e.g. log retention): not ours to rehearse
                continue
            layers = []
            for layer in props.get("Layers", []):
                layer_props = resources[layer["Ref"]]["Properties"]
                layers.append(self.file_asset_dir(layer_props["Content"]["S3Key"]))
            name = props.get("FunctionName", logical_id)
            role = props["Role"]["Fn::GetAtt"][0]
            out[name] = FunctionDef(
                logical_id=logical_id,
                name=name,
                handler=props["Handler"],
                runtime=props["Runtime"],
                memory_mb=int(props.get("MemorySize", 128)),
                timeout_s=int(props.get("Timeout", 3)),
                environment=props.get("Environment", {}).get("Variables", {}),
                code_dir=self.file_asset_dir(code["S3Key"]),
                layer_dirs=tuple(layers),
                role_logical_id=role,
            )
        return out


@dataclass
class Resolver:
    """Evaluates intrinsics. ``refs`` maps logical id -> Ref value; ``attrs`` maps (logical id, attribute) -> value."""

    template: Mapping[str, Any]
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], Any] = field(default_factory=dict)
    account: str = ACCOUNT
    region: str = REGION
    fallback: Callable[[str, str | None], Any] | None = None  # (logical id, attribute or None) -> value

    @property
    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "Quarry",
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account}:stack/Quarry/rehearsal",
            "AWS::NoValue": "",
        }

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return self._parameter(name, parameters[name])
        if self.fallback is not None:
            return self.fallback(name, None)
        raise UnresolvedReference(f"Ref {name}: the rehearsal holds no such resource")

    def get_att(self, name: str, attribute: str) -> Any:
        if (name, attribute) in self.attrs:
            return self.attrs[(name, attribute)]
        if self.fallback is not None:
            return self.fallback(name, attribute)
        raise UnresolvedReference(f"Fn::GetAtt {name}.{attribute}: the rehearsal holds no such attribute")

    def _parameter(self, name: str, spec: Mapping[str, Any]) -> Any:
        if "Default" in spec:
            return spec["Default"]
        raise UnresolvedReference(f"parameter {name} has no default")

    def condition(self, name: str) -> bool:
        return bool(self(self.template.get("Conditions", {})[name]))

    def __call__(self, value: Any) -> Any:  # noqa: C901 - one branch per intrinsic, as the spec lists them
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(name, attribute)
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(self(p)) for p in self(parts))
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Select":
            index, items = arg
            return self(items)[int(self(index))]
        if key == "Fn::Split":
            separator, text = arg
            return str(self(text)).split(separator)
        if key == "Fn::If":
            name, yes, no = arg
            return self(yes if self.condition(name) else no)
        if key == "Fn::Equals":
            left, right = arg
            return self(left) == self(right)
        if key == "Fn::Not":
            return not self(arg[0])
        if key == "Fn::And":
            return all(self(a) for a in arg)
        if key == "Fn::Or":
            return any(self(a) for a in arg)
        if key == "Fn::GetAZs":
            return [f"{self.region}a", f"{self.region}b", f"{self.region}c"]
        if key == "Fn::ToJsonString":
            return json.dumps(self(arg))
        if key == "Fn::ImportValue":
            raise UnresolvedReference(f"Fn::ImportValue {arg}: the stack must not import values")
        return {k: self(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return str(self.get_att(logical, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)
