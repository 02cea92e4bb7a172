"""URLs as they may be shown: a subscriber URL may carry ``user:password@`` (SNS's basic authentication for
HTTP(S) endpoints), and no output, log or error of ours ever prints a password."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?<=://)[^/@]*@")


def without_credentials(url: str) -> str:
    """``https://user:pw@host/x`` -> ``https://****@host/x``; any other URL unchanged."""
    return _USERINFO.sub("****@", url)
