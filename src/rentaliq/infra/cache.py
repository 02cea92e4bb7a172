"""Skip a synth whose inputs have not changed, and never let two runs share a half-written cdk.out/.

The key covers the spec (with overrides), this package's source and the CDK and cdk-nag versions, so any
change that could alter a template re-synthesizes. Each synth writes into its own run directory
(`cdk.out/.runs/<pid>-<random>/`); its templates are then published by atomic rename, twice: under their key
(`cdk.out/.templates/{stack}-{key}.json`, immutable, the file a deploy reads) and under the CDK's usual name
(`cdk.out/{stack}.template.json`). Two `up` runs with different configs therefore deploy their own template,
never the other's or a partial one.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import shutil
import uuid
from importlib import metadata
from pathlib import Path

from rentaliq.environments import EnvironmentSpec

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
KEYED_DIR = ".templates"
RUNS_DIR = ".runs"


def synth_key(spec: EnvironmentSpec) -> str:
    digest = hashlib.sha256(spec.model_dump_json().encode())
    for name in ("aws-cdk-lib", "cdk-nag"):
        digest.update(metadata.version(name).encode())
    for path in stack_sources():
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def stack_sources() -> tuple[Path, ...]:
    """Every module of this package the stacks import, found by following the import statements from the CDK app.

    Derived, never listed by hand: a module the stacks start importing (``contract.py`` did) is covered at once.
    Read statically (``ast``), because importing the app would load aws_cdk, the very cost a cache hit avoids.
    """
    found: set[Path] = set()
    pending = [_PACKAGE_DIR / "infra" / "app.py"]
    while pending:
        path = pending.pop()
        if path in found or not path.is_file():
            continue
        found.add(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name == "rentaliq" or name.startswith("rentaliq."):
                    parts = name.split(".")[1:]
                    pending += [_PACKAGE_DIR.joinpath(*parts[:i], "__init__.py") for i in range(len(parts) + 1)]  # parents run too
                    pending.append(_PACKAGE_DIR.joinpath(*parts).with_suffix(".py"))
    return tuple(sorted(found))


def _keyed(spec: EnvironmentSpec, outdir: Path) -> Path:
    return outdir / KEYED_DIR / f"{spec.stack_name}-{synth_key(spec)[:32]}.json"


def cached_template(spec: EnvironmentSpec, outdir: Path) -> Path | None:
    path = _keyed(spec, outdir)
    return path if path.is_file() else None


def _publish(source: Path, destination: Path) -> None:
    """Copy, then rename: a reader sees the old file or the whole new one, never a part."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    shutil.copyfile(source, partial)
    os.replace(partial, destination)


def remember(specs: list[EnvironmentSpec], outdir: Path) -> None:
    """Publish templates that `rentaliq synth` wrote to `outdir` under their keys, for `up`/`deploy` to reuse."""
    for spec in specs:
        template = outdir / f"{spec.stack_name}.template.json"
        if template.is_file():
            _publish(template, _keyed(spec, outdir))


def templates(specs: list[EnvironmentSpec], outdir: Path) -> dict[str, Path]:
    """A template per spec, synthesizing (once, all missing together, nag on, in a private run dir) only what is stale."""
    found = {spec.stack_name: cached_template(spec, outdir) for spec in specs}
    stale = [spec for spec in specs if found[spec.stack_name] is None]
    if stale:
        from rentaliq.infra.app import synthesize

        run_dir = outdir / RUNS_DIR / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            for result in synthesize(stale, run_dir):
                keyed = _keyed(result.spec, outdir)
                _publish(result.template_path, keyed)
                _publish(result.template_path, outdir / f"{result.spec.stack_name}.template.json")
                found[result.spec.stack_name] = keyed
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    return found  # type: ignore[return-value]  # the synth above filled every None
