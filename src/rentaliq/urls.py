"""Small facts about hosts and URLs: which hosts are this machine (the local cloud binds only to them, and the spec
allows plain http only to them), and URLs as they may be shown: a subscriber URL may carry ``user:password@`` (SNS's
basic authentication), and no output, log or error of ours ever prints a password."""

from __future__ import annotations

import ipaddress
import re

_USERINFO = re.compile(r"(?<=://)[^/@]*@")


def without_credentials(url: str) -> str:
    """``https://user:pw@host/x`` -> ``https://****@host/x``; any other URL unchanged."""
    return _USERINFO.sub("****@", url)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
