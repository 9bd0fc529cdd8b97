"""What can be checked of a Docker image without a container engine, from its staged build context.

:func:`parse_dockerfile` reads a Dockerfile (continuations joined, comments dropped, ``ARG``/``ENV`` values
substituted where Docker substitutes them). :func:`missing_copy_sources` finds the ``COPY``/``ADD`` sources the
build would not find: absent from the context or excluded by its ``.dockerignore`` (Docker's matching: the
last matching pattern wins, a path is excluded when it or one of its parents matches). :func:`build_image_root`
lays out a folder standing for the image's filesystem: ``WORKDIR``/``COPY`` applied under ``root_dir``, a clean
venv made with the given interpreter (the base image's Python), the ``pip install`` RUN lines run in it; what
it cannot run (``apt-get``, other shell commands, ``COPY --from``, ``USER``) is listed in
:attr:`ImageRoot.skipped`. :func:`cached_image_root` keeps one built root per (context, Dockerfile, Python)
hash under the user's cache folder, so a second run costs nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CopyInstruction",
    "Dockerfile",
    "DockerignoreRules",
    "ImageRoot",
    "ImageRootError",
    "Instruction",
    "build_image_root",
    "cache_dir",
    "cached_image_root",
    "context_digest",
    "missing_copy_sources",
    "parse_dockerfile",
]

# What the build's RUN environment gets from ENV but a rehearsal must not: pip's cache makes repeated runs fast.
_NOT_FORCED_ENV = frozenset({"PIP_NO_CACHE_DIR"})
_NOT_FORCED_PIP_FLAGS = frozenset({"--no-cache-dir"})
# Host variables that would leak another Python environment into the clean venv.
_HOST_ENV_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PIP_USER", "PIP_TARGET", "PIP_PREFIX")
_SHELL_OPERATORS = re.compile(r"\|\||[;|<>`]|\$\(")
_VERSION = 1  # bump when the layout of a built root changes: old cache entries are then not reused


class ImageRootError(RuntimeError):
    """The image root could not be built (no such interpreter, wrong Python version, a failing pip install)."""


# --------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Instruction:
    """One instruction. ``value`` is the text after the keyword with continuations joined and flags removed;
    ``argv`` is the JSON (exec) form when the instruction used it, else ``None`` (shell form)."""

    line: int  # 1-based line of the instruction's first physical line
    keyword: str  # upper case: FROM, RUN, COPY, ...
    value: str
    flags: Mapping[str, str] = field(default_factory=dict)  # --chown=1000 -> {"chown": "1000"}
    argv: tuple[str, ...] | None = None

    @property
    def text(self) -> str:
        flags = " ".join(f"--{k}={v}" for k, v in self.flags.items())
        return " ".join(part for part in (self.keyword, flags, self.value) if part)

    @property
    def shell_form(self) -> bool:
        return self.argv is None


@dataclass(frozen=True)
class CopyInstruction(Instruction):
    """A ``COPY`` or ``ADD``: context-relative ``sources`` (globs allowed) into ``dest``."""

    sources: tuple[str, ...] = ()
    dest: str = ""
    workdir: str = "/"  # the WORKDIR in effect, against which a relative ``dest`` is resolved

    @property
    def chown(self) -> str | None:
        return self.flags.get("chown")

    @property
    def from_stage(self) -> str | None:
        return self.flags.get("from")


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    instructions: tuple[Instruction, ...]

    @property
    def stages(self) -> list[list[Instruction]]:
        """Instructions grouped by build stage, each group starting with its FROM."""
        out: list[list[Instruction]] = []
        for ins in self.instructions:
            if ins.keyword == "FROM" or not out:
                out.append([])
            out[-1].append(ins)
        return out

    @property
    def final_stage(self) -> list[Instruction]:
        return self.stages[-1] if self.instructions else []

    @property
    def base_image(self) -> str:
        """The final stage's base image (``FROM <image> [AS name]``)."""
        first = self.final_stage[0] if self.final_stage else None
        if first is None or first.keyword != "FROM":
            raise ValueError(f"{self.path}: no FROM")
        return first.value.split()[0]

    def of(self, *keywords: str) -> list[Instruction]:
        """The final stage's instructions with one of these keywords, in order."""
        return [ins for ins in self.final_stage if ins.keyword in keywords]

    @property
    def copies(self) -> list[CopyInstruction]:
        """Every COPY/ADD of every stage."""
        return [ins for ins in self.instructions if isinstance(ins, CopyInstruction)]

    @property
    def workdir(self) -> str:
        return _final_workdir(self.final_stage)

    @property
    def env(self) -> dict[str, str]:
        """The final stage's ENV, in order of definition."""
        out: dict[str, str] = {}
        for ins in self.of("ENV"):
            out.update(_env_pairs(ins.value))
        return out

    @property
    def user(self) -> str | None:
        users = self.of("USER")
        return users[-1].value if users else None

    @property
    def entrypoint(self) -> Instruction | None:
        found = self.of("ENTRYPOINT")
        return found[-1] if found else None

    @property
    def cmd(self) -> Instruction | None:
        found = self.of("CMD")
        return found[-1] if found else None


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, joined text) per instruction: comments and blank lines inside continuations dropped."""
    escape = "\\"
    first_directive = re.match(r"\s*#\s*escape\s*=\s*(\S)", text)
    if first_directive:
        escape = first_directive.group(1)
    start = 0
    parts: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        if raw.rstrip().endswith(escape):
            parts.append(raw.rstrip()[: -len(escape)])
            continue
        parts.append(raw)
        yield start, " ".join(p.strip() for p in parts)
        parts = []
    if parts:
        yield start, " ".join(p.strip() for p in parts)


_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def _expand(text: str, variables: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        value = variables.get(name, "")
        if m.group("op") == "-":
            return value or m.group("word")
        if m.group("op") == "+":
            return m.group("word") if value else ""
        return value

    return _VAR.sub(sub, text)


def _env_pairs(value: str) -> list[tuple[str, str]]:
    """``ENV a=1 b="two words"`` or the legacy ``ENV a one value``."""
    tokens = shlex.split(value)
    if tokens and "=" not in tokens[0]:
        return [(tokens[0], value.split(None, 1)[1].strip() if len(tokens) > 1 else "")]
    return [(name, text) for name, _, text in (t.partition("=") for t in tokens)]


def _split_flags(value: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = value
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, flag_value = token[2:].partition("=")
        flags[name] = flag_value
        rest = rest.lstrip()
    return flags, rest


def _exec_form(value: str) -> tuple[str, ...] | None:
    if not value.startswith("["):
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None  # Docker then runs it in shell form
    if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
        return tuple(parsed)
    return None


def _final_workdir(instructions: Sequence[Instruction]) -> str:
    workdir = "/"
    for ins in instructions:
        if ins.keyword == "FROM":
            workdir = "/"
        elif ins.keyword == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, ins.value))
    return workdir


def parse_dockerfile(path: Path | str) -> Dockerfile:
    """Parse a Dockerfile: instructions with continuations joined; ``$VAR``/``${VAR}``/``${VAR:-x}`` from ARG
    and ENV expanded in FROM (ARG only), WORKDIR, ENV, COPY/ADD, USER; RUN/CMD/ENTRYPOINT left as written."""
    path = Path(path)
    instructions: list[Instruction] = []
    global_args: dict[str, str] = {}
    variables: dict[str, str] = {}
    workdir = "/"
    seen_from = False
    for line, logical in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, value = logical.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        flags: dict[str, str] = {}
        if keyword in ("COPY", "ADD", "RUN", "FROM"):
            flags, value = _split_flags(value)
        if keyword == "ARG":
            name, _, default = value.partition("=")
            default = default.strip().strip('"')
            (variables if seen_from else global_args)[name.strip()] = _expand(default, variables)
        elif keyword == "FROM":
            seen_from, workdir = True, "/"
            value = _expand(value, global_args)
            variables = dict(global_args)
        elif keyword in ("WORKDIR", "ENV", "USER", "COPY", "ADD", "LABEL", "EXPOSE", "VOLUME", "STOPSIGNAL"):
            value = _expand(value, variables)
        if keyword == "ENV":
            variables.update(_env_pairs(value))
        if keyword == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, value))
        argv = _exec_form(value) if keyword in ("RUN", "CMD", "ENTRYPOINT", "COPY", "ADD", "VOLUME") else None
        if keyword in ("COPY", "ADD"):
            parts = list(argv) if argv is not None else value.split()
            if len(parts) < 2:
                raise ValueError(f"{path}:{line}: {keyword} needs a source and a destination")
            instructions.append(
                CopyInstruction(
                    line, keyword, value, flags, argv, sources=tuple(parts[:-1]), dest=parts[-1], workdir=workdir
                )
            )
        else:
            instructions.append(Instruction(line, keyword, value, flags, argv))
    return Dockerfile(path=path, instructions=tuple(instructions))


# --------------------------------------------------------------------------------------------- .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's (moby patternmatcher) translation: ``*`` and ``?`` stop at ``/``, ``**`` crosses folders."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 1
                if pattern.startswith("/", i + 1):  # "**/" also matches no folder at all
                    i += 1
                    out += "(.*/)?"
                else:
                    out += ".*"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape(ch)
            else:
                body = pattern[i + 1 : end]
                out += "[" + ("^" + body[1:] if body.startswith("^") or body.startswith("!") else body) + "]"
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


@dataclass(frozen=True)
class DockerignoreRules:
    """The patterns of a ``.dockerignore``, matched as Docker matches them."""

    patterns: tuple[tuple[str, bool, re.Pattern[str]], ...]  # (pattern as written, negated, regex)

    @classmethod
    def read(cls, context_dir: Path) -> DockerignoreRules:
        file = context_dir / ".dockerignore"
        lines = file.read_text(encoding="utf-8").splitlines() if file.is_file() else []
        return cls.parse(lines)

    @classmethod
    def parse(cls, lines: Sequence[str]) -> DockerignoreRules:
        out = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            body = line[1:].strip() if negated else line
            body = os.path.normpath(body).lstrip("/") if body not in ("", "/") else "."
            out.append((line, negated, _pattern_regex(body)))
        return cls(tuple(out))

    def matching(self, relative_path: str) -> str | None:
        """The pattern that excludes ``relative_path`` (it or one of its parent folders matches it last), or
        ``None`` when the path is in the context."""
        path = os.path.normpath(relative_path).lstrip("/")
        candidates = [path]
        parent = os.path.dirname(path)
        while parent:
            candidates.append(parent)
            parent = os.path.dirname(parent)
        excluded_by: str | None = None
        for written, negated, regex in self.patterns:
            if any(regex.match(c) for c in candidates):
                excluded_by = None if negated else written
        return excluded_by

    def excludes(self, relative_path: str) -> bool:
        return self.matching(relative_path) is not None


def _context_files(context_dir: Path, rules: DockerignoreRules) -> Iterator[str]:
    """Every file (and symlink) of the context the build would see, relative, sorted."""
    for dirpath, dirnames, filenames in os.walk(context_dir):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, context_dir)
        for name in sorted(filenames):
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if not rules.excludes(rel):
                yield rel


def _glob_sources(context_dir: Path, source: str) -> list[str]:
    """Context-relative paths (files or folders) a COPY source names; globs matched per path component."""
    pattern = os.path.normpath(source).lstrip("/")
    if pattern in (".", ""):
        return ["."]
    if not any(ch in pattern for ch in "*?["):
        return [pattern] if os.path.lexists(context_dir / pattern) else []
    matches = [""]
    for part in pattern.split("/"):
        nxt = []
        for base in matches:
            folder = context_dir / base if base else context_dir
            if not folder.is_dir():
                continue
            for name in sorted(os.listdir(folder)):
                if fnmatch.fnmatchcase(name, part):
                    nxt.append(f"{base}/{name}" if base else name)
        matches = nxt
    return matches


def missing_copy_sources(dockerfile: Dockerfile, context_dir: Path | str) -> list[str]:
    """One message per ``COPY``/``ADD`` source the build would not find in ``context_dir`` (a staged build
    context): no such path, or excluded by the context's ``.dockerignore`` (when the staged context still holds
    one; CDK drops excluded files while staging and keeps the file). Sources of ``--from`` copies and ``ADD``
    URLs are not in the context and are skipped. An empty list: every source is there."""
    context_dir = Path(context_dir)
    rules = DockerignoreRules.read(context_dir)
    problems = []
    for ins in dockerfile.copies:
        if ins.from_stage is not None:
            continue
        for source in ins.sources:
            where = f"line {ins.line}: {ins.keyword} {source}"
            if ins.keyword == "ADD" and re.match(r"^[a-z]+://", source):
                continue
            if os.path.isabs(source) or os.path.normpath(source).startswith(".."):
                problems.append(f"{where}: outside the build context")
                continue
            found = _glob_sources(context_dir, source)
            if not found:
                problems.append(f"{where}: not in the build context {context_dir}")
                continue
            kept = [p for p in found if p == "." or not rules.excludes(p)]
            if not kept:
                problems.append(f"{where}: excluded by .dockerignore pattern {rules.matching(found[0])!r}")
                continue
            if all((context_dir / p).is_dir() and not _any_file(context_dir, p, rules) for p in kept):
                problems.append(f"{where}: every file under it is excluded by .dockerignore")
    return problems


def _any_file(context_dir: Path, folder: str, rules: DockerignoreRules) -> bool:
    for dirpath, _dirnames, filenames in os.walk(context_dir / folder):
        for name in filenames:
            if not rules.excludes(os.path.relpath(os.path.join(dirpath, name), context_dir)):
                return True
    return False


# --------------------------------------------------------------------------------------------- the image root


@dataclass(frozen=True)
class ImageRoot:
    """A folder standing for the image's filesystem (``root``: ``root/app`` is the image's ``/app``) with a
    clean venv (``python``) holding what the Dockerfile's pip installs put in the image's site-packages."""

    root: Path
    python: Path  # the venv's interpreter: stands for the image's `python`
    workdir: Path  # the final WORKDIR inside root
    entrypoint: tuple[str, ...]  # ENTRYPOINT (+ CMD) with `python` replaced by the venv's interpreter
    env: Mapping[str, str]  # the ENV lines, as the container gets them
    user: str | None  # the USER the container would run as (not emulated: files here belong to you)
    skipped: tuple[str, ...]  # instructions not carried out, each "line N: <instruction> (<why>)"
    base_image: str = ""
    seconds: float = 0.0  # how long the build took (0 when reused from the cache)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A minimal process environment for the container's process: the venv first on PATH, the image's ENV,
        then ``extra`` (e.g. QUARRY_* settings and AWS endpoints of a rehearsal)."""
        env = {
            "PATH": f"{self.python.parent}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
            "HOME": str(self.root / "home"),
            "LANG": "C.UTF-8",
        }
        env.update(self.env)
        env.update(extra or {})
        return env

    def run(
        self,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        timeout: float | None = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run the entry point (plus ``args``) in the WORKDIR with :meth:`environment`, output captured."""
        (self.root / "home").mkdir(exist_ok=True)
        return subprocess.run(
            [*self.entrypoint, *args],
            cwd=self.workdir,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "python": str(self.python),
            "workdir": str(self.workdir),
            "entrypoint": list(self.entrypoint),
            "env": dict(self.env),
            "user": self.user,
            "skipped": list(self.skipped),
            "base_image": self.base_image,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageRoot:
        return cls(
            root=Path(data["root"]),
            python=Path(data["python"]),
            workdir=Path(data["workdir"]),
            entrypoint=tuple(data["entrypoint"]),
            env=dict(data["env"]),
            user=data["user"],
            skipped=tuple(data["skipped"]),
            base_image=str(data.get("base_image", "")),
            seconds=0.0,
        )


def _inside(root: Path, image_path: str) -> Path:
    return root / os.path.normpath(image_path).lstrip("/")


def _python_version(python: Path) -> str:
    probe = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        raise ImageRootError(f"{python} does not run: {probe.stderr.strip()}")
    return probe.stdout.strip()


def _check_python(python: Path | str, base_image: str) -> Path:
    path = Path(python)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ImageRootError(
            f"the interpreter {path} for the image root is missing: install the base image's Python "
            f"({base_image}) there or pass another one"
        )
    wanted = re.search(r"python:(\d+\.\d+)", base_image)
    actual = _python_version(path)
    if wanted and wanted.group(1) != actual:
        raise ImageRootError(f"{path} is Python {actual}, the image's base {base_image} is Python {wanted.group(1)}")
    return path


def _copy_into(context_dir: Path, ins: CopyInstruction, root: Path, rules: DockerignoreRules) -> None:
    dest_in_image = ins.dest if ins.dest.startswith("/") else os.path.join(ins.workdir, ins.dest)
    dest = _inside(root, dest_in_image)
    sources = [p for s in ins.sources for p in _glob_sources(context_dir, s) if p == "." or not rules.excludes(p)]
    into_folder = ins.dest.endswith("/") or len(sources) > 1 or len(ins.sources) > 1
    for rel in sources:
        src = context_dir / rel
        if src.is_dir():  # a folder's contents go to dest, minus what .dockerignore excludes
            for dirpath, _dirnames, filenames in os.walk(src):
                for name in filenames:
                    file = Path(dirpath) / name
                    rel_file = os.path.relpath(file, context_dir)
                    if rules.excludes(rel_file):
                        continue
                    target = dest / file.relative_to(src)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target)
            dest.mkdir(parents=True, exist_ok=True)
        else:
            target = dest / src.name if into_folder or dest.is_dir() else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def _pip_commands(ins: Instruction, venv_python: Path) -> list[list[str]] | None:
    """The RUN's commands as argv lists with pip made the venv's, or ``None`` when it is not only pip installs."""
    if ins.argv is not None:
        segments = [list(ins.argv)]
    else:
        if _SHELL_OPERATORS.search(ins.value.replace("&&", " ")):
            return None
        segments = [shlex.split(part) for part in ins.value.split("&&")]
    out = []
    for argv in segments:
        if argv[:1] in (["pip"], ["pip3"]):
            rest = argv[1:]
        elif len(argv) >= 3 and argv[0] in ("python", "python3") and argv[1:3] == ["-m", "pip"]:
            rest = argv[3:]
        else:
            return None
        out.append([str(venv_python), "-m", "pip", *[a for a in rest if a not in _NOT_FORCED_PIP_FLAGS]])
    return out


def build_image_root(
    dockerfile: Dockerfile,
    context_dir: Path | str,
    root_dir: Path | str,
    python: Path | str,
    *,
    pip_timeout: float = 1800,
) -> ImageRoot:
    """Lay out ``root_dir`` as the final stage's filesystem: WORKDIR folders made and COPY/ADD applied from
    ``context_dir`` (honouring its ``.dockerignore``), a clean venv (``root_dir/venv``) made with ``python``
    (which must be the base image's Python version), and every RUN made only of ``pip``/``python -m pip``
    commands run with the venv's pip, in the WORKDIR, with the ENV lines (``PIP_NO_CACHE_DIR`` and
    ``--no-cache-dir`` left out, so pip's cache serves repeated builds). Everything else (``apt-get`` and other
    RUN lines, ``COPY --from``, ``USER``) is recorded in :attr:`ImageRoot.skipped`, not run.
    Raises :class:`ImageRootError` when the interpreter is missing or a pip install fails."""
    started = time.monotonic()
    context_dir, root = Path(context_dir).resolve(), Path(root_dir).resolve()
    base_image = dockerfile.base_image
    interpreter = _check_python(python, base_image)
    root.mkdir(parents=True, exist_ok=True)
    venv = root / "venv"
    made = subprocess.run(
        [str(interpreter), "-m", "venv", "--clear", str(venv)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        raise ImageRootError(f"{interpreter} -m venv failed: {made.stderr.strip()}")
    venv_python = venv / "bin" / "python"
    rules = DockerignoreRules.read(context_dir)
    host_env = {k: v for k, v in os.environ.items() if k not in _HOST_ENV_DROPPED}
    env: dict[str, str] = {}
    skipped: list[str] = []
    workdir = "/"
    for ins in dockerfile.final_stage:
        where = f"line {ins.line}: {ins.text}"
        if ins.keyword == "FROM":
            continue
        if ins.keyword == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, ins.value))
            _inside(root, workdir).mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "ENV":
            env.update(_env_pairs(ins.value))
        elif isinstance(ins, CopyInstruction):
            if ins.from_stage is not None:
                skipped.append(f"{where} (copies from another stage or image: not rehearsed)")
                continue
            _copy_into(context_dir, ins, root, rules)
        elif ins.keyword == "RUN":
            commands = _pip_commands(ins, venv_python)
            if commands is None:
                why = "system packages: not installed here" if "apt-get" in ins.value else "not a pip install"
                skipped.append(f"{where} ({why})")
                continue
            run_env = {**host_env, **{k: v for k, v in env.items() if k not in _NOT_FORCED_ENV}}
            run_env["PATH"] = f"{venv_python.parent}{os.pathsep}{host_env.get('PATH', '')}"
            run_env["VIRTUAL_ENV"] = str(venv)
            for argv in commands:
                done = subprocess.run(
                    argv,
                    cwd=_inside(root, workdir),
                    env=run_env,
                    capture_output=True,
                    text=True,
                    timeout=pip_timeout,
                    check=False,
                )
                if done.returncode != 0:
                    tail = (done.stdout[-3000:] + done.stderr[-3000:]).strip()
                    raise ImageRootError(f"{where}: {' '.join(argv)} exited {done.returncode}\n{tail}")
        elif ins.keyword == "USER":
            skipped.append(f"{where} (the rehearsal runs as the current user)")
        elif ins.keyword in ("ENTRYPOINT", "CMD", "ARG", "LABEL", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "SHELL"):
            continue
        else:
            skipped.append(f"{where} (not rehearsed)")
    return ImageRoot(
        root=root,
        python=venv_python,
        workdir=_inside(root, workdir),
        entrypoint=_entrypoint(dockerfile, venv_python),
        env=env,
        user=dockerfile.user,
        skipped=tuple(skipped),
        base_image=base_image,
        seconds=round(time.monotonic() - started, 1),
    )


def _entrypoint(dockerfile: Dockerfile, venv_python: Path) -> tuple[str, ...]:
    entry, cmd = dockerfile.entrypoint, dockerfile.cmd

    def argv(ins: Instruction) -> list[str]:
        return list(ins.argv) if ins.argv is not None else ["/bin/sh", "-c", ins.value]

    if entry is not None:
        out = argv(entry) + (list(cmd.argv) if cmd is not None and cmd.argv is not None and entry.argv else [])
    elif cmd is not None:
        out = argv(cmd)
    else:
        raise ValueError(f"{dockerfile.path}: no ENTRYPOINT or CMD")
    if out and out[0] in ("python", "python3", "/usr/local/bin/python", "/usr/local/bin/python3"):
        out[0] = str(venv_python)
    return tuple(out)


# --------------------------------------------------------------------------------------------- the cache


def cache_dir() -> Path:
    """``$QUARRY_REHEARSAL_CACHE``, else ``$XDG_CACHE_HOME/quarry/rehearsal``, else ``~/.cache/quarry/rehearsal``:
    outside the repository, so nothing needs ignoring in git."""
    explicit = os.environ.get("QUARRY_REHEARSAL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "quarry" / "rehearsal"


def context_digest(dockerfile: Dockerfile, context_dir: Path | str, python: Path | str) -> str:
    """A hash of what the built root depends on: every file of the context the build sees (path and bytes),
    the Dockerfile's text, the interpreter's path and version."""
    context_dir = Path(context_dir)
    digest = hashlib.sha256(f"v{_VERSION}\n".encode())
    digest.update(dockerfile.path.read_bytes())
    digest.update(f"\0{Path(python).resolve()}\0{_python_version(Path(python))}\0".encode())
    for rel in _context_files(context_dir, DockerignoreRules.read(context_dir)):
        digest.update(rel.encode() + b"\0")
        file = context_dir / rel
        digest.update(os.readlink(file).encode() if file.is_symlink() else file.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def cached_image_root(
    dockerfile: Dockerfile,
    context_dir: Path | str,
    python: Path | str,
    *,
    cache: Path | None = None,
    keep: int = 2,
) -> ImageRoot:
    """:func:`build_image_root` under ``cache/<context_digest>``, reused when the same context, Dockerfile and
    interpreter were built before (a lock file serialises concurrent builders of one key). After a build, only
    the ``keep`` most recently used roots stay in ``cache`` (each is a whole venv)."""
    base_image = dockerfile.base_image
    interpreter = _check_python(python, base_image)
    folder = (cache or cache_dir()) / context_digest(dockerfile, context_dir, interpreter)
    folder.parent.mkdir(parents=True, exist_ok=True)
    done = folder / "image-root.json"
    with _locked(folder.with_suffix(".lock")):
        if done.is_file():
            root = ImageRoot.from_json(json.loads(done.read_text()))
            if root.python.is_file():
                done.touch()  # recently used: pruned last
                return root
        if folder.exists():
            shutil.rmtree(folder)
        root = build_image_root(dockerfile, context_dir, folder / "root", interpreter)
        done.write_text(json.dumps(root.to_json(), indent=2))
    _prune(folder.parent, keep)
    return root


def _prune(cache: Path, keep: int) -> None:
    built = sorted(cache.glob("*/image-root.json"), key=lambda f: f.stat().st_mtime, reverse=True)
    for stale in built[keep:]:
        with contextlib.suppress(BlockingIOError), _locked(stale.parent.with_suffix(".lock"), wait=False):
            shutil.rmtree(stale.parent, ignore_errors=True)


@contextlib.contextmanager
def _locked(lock_file: Path, *, wait: bool = True) -> Iterator[None]:
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
