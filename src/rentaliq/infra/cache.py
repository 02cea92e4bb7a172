"""Skip a synth whose inputs have not changed: a no-op `rentaliq up` must not pay for jsii and nag.

The key covers the spec (with overrides), this package's source and the CDK and cdk-nag versions, so any
change that could alter a template re-synthesizes.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

from rentaliq.environments import EnvironmentSpec

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
CACHE_FILE = ".rentaliq-synth.json"


def synth_key(spec: EnvironmentSpec) -> str:
    digest = hashlib.sha256(spec.model_dump_json().encode())
    for name in ("aws-cdk-lib", "cdk-nag"):
        digest.update(metadata.version(name).encode())
    spec_sources = sorted((_PACKAGE_DIR / "spec").glob("*.py"))  # the models' methods (tags, stack name) shape templates
    for path in sorted((_PACKAGE_DIR / "infra").rglob("*.py")) + spec_sources + [_PACKAGE_DIR / "naming.py", _PACKAGE_DIR / "environments.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached_template(spec: EnvironmentSpec, outdir: Path) -> Path | None:
    template = outdir / f"{spec.stack_name}.template.json"
    try:
        keys = json.loads((outdir / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return template if template.is_file() and keys.get(spec.stack_name) == synth_key(spec) else None


def remember(specs: list[EnvironmentSpec], outdir: Path) -> None:
    path = outdir / CACHE_FILE
    try:
        keys = json.loads(path.read_text())
    except (OSError, ValueError):
        keys = {}
    keys.update({spec.stack_name: synth_key(spec) for spec in specs})
    path.write_text(json.dumps(keys, indent=2))


def templates(specs: list[EnvironmentSpec], outdir: Path) -> dict[str, Path]:
    """A template per spec, synthesizing (once, all missing together, nag on) only what is stale."""
    found = {spec.stack_name: cached_template(spec, outdir) for spec in specs}
    stale = [spec for spec in specs if found[spec.stack_name] is None]
    if stale:
        from rentaliq.infra.app import synthesize

        for result in synthesize(stale, outdir):
            found[result.spec.stack_name] = result.template_path
        remember(stale, outdir)
    return found  # type: ignore[return-value]
