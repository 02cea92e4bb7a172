"""HTTP(S) delivery of SNS messages, off the request thread, with AWS's retry policy.

A POST succeeds on any 2xx answer within 15 s (SNS's HTTP timeout). Otherwise it is retried by the delivery
policy: the subscription's ``DeliveryPolicy`` ``healthyRetryPolicy``, else the topic's
``http.defaultHealthyRetryPolicy``, else AWS's default for HTTP/S: 3 retries, 20 s apart (numRetries 3,
minDelayTarget = maxDelayTarget = 20, no immediate retries, linear backoff). The retry phases follow the
documented order: ``numNoDelayRetries`` at once, ``numMinDelayRetries`` at minDelayTarget, the backoff phase from
minDelayTarget to maxDelayTarget, then ``numMaxDelayRetries`` at maxDelayTarget. So a delivery is bounded:
at most ``1 + numRetries`` attempts (AWS caps numRetries at 100). Deliveries still queued when the local cloud
stops are dropped (nothing is persisted), like messages AWS gives up on.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rentaliq.urls import without_credentials

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15.0
DEFAULT_POLICY = {
    "minDelayTarget": 20,
    "maxDelayTarget": 20,
    "numRetries": 3,
    "numMaxDelayRetries": 0,
    "numNoDelayRetries": 0,
    "numMinDelayRetries": 0,
    "backoffFunction": "linear",
}


def retry_delays(policy: dict[str, Any] | None) -> list[float]:
    """The waits before each retry, in order, for a healthyRetryPolicy (missing keys take AWS's defaults)."""
    p = {**DEFAULT_POLICY, **(policy or {})}
    retries = min(int(p["numRetries"]), 100)
    lo, hi = float(p["minDelayTarget"]), float(p["maxDelayTarget"])
    no_delay, at_min, at_max = int(p["numNoDelayRetries"]), int(p["numMinDelayRetries"]), int(p["numMaxDelayRetries"])
    backoff = max(retries - no_delay - at_min - at_max, 0)
    delays = [0.0] * no_delay + [lo] * at_min
    for i in range(backoff):
        step = (i + 1) / backoff
        if p.get("backoffFunction") == "exponential":
            delays.append(lo * (hi / lo) ** step if lo > 0 else hi * step)
        elif p.get("backoffFunction") == "geometric":
            delays.append(lo + (hi - lo) * step**2)
        else:  # linear (and arithmetic, approximated as linear)
            delays.append(lo + (hi - lo) * (i / max(backoff - 1, 1)) if backoff > 1 else lo)
    delays += [hi] * at_max
    return delays[:retries]


def policy_for(subscription_policy: str | None, topic_policy: str | None) -> dict[str, Any] | None:
    """The healthyRetryPolicy that applies (the subscription's overrides the topic's)."""
    for text, path in ((subscription_policy, ("healthyRetryPolicy",)), (topic_policy, ("http", "defaultHealthyRetryPolicy"))):
        if not text:
            continue
        try:
            found: Any = json.loads(text)
            for part in path:
                found = found.get(part) if isinstance(found, dict) else None
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    return None


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    delays: list[float] = field(compare=False)
    attempt: int = field(default=0, compare=False)


@dataclass
class Attempt:
    """One POST, for diagnostics (``Deliverer.recent``)."""

    url: str
    message_type: str
    attempt: int
    status: int | None
    error: str | None


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``https://user:password@host/path`` as SNS reads it: the URL without the credentials, and the Basic
    Authorization header they become (AWS documents basic authentication for HTTP(S) endpoints)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    token = base64.b64encode(f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}".encode()).decode()
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), {"Authorization": f"Basic {token}"}


class Deliverer:
    """A scheduler thread that hands due POSTs to one lane per endpoint (scheme, host and port): a slow or dead
    endpoint holds up only its own deliveries, never another subscriber's, as on AWS. Retries go back into the
    schedule."""

    def __init__(self) -> None:
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._lanes: dict[str, ThreadPoolExecutor] = {}
        self._stopping = False
        self.recent: deque[Attempt] = deque(maxlen=200)
        self._thread = threading.Thread(target=self._run, name="sns-delivery", daemon=True)
        self._thread.start()

    def submit(self, url: str, body: bytes, headers: dict[str, str], delays: list[float]) -> None:
        with self._cv:
            heapq.heappush(self._heap, _Job(time.monotonic(), next(self._seq), url, body, headers, delays))
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout=5)
        with self._cv:
            lanes, self._lanes = list(self._lanes.values()), {}
        for lane in lanes:
            lane.shutdown(wait=False, cancel_futures=True)

    def _lane(self, url: str) -> ThreadPoolExecutor:
        parts = urllib.parse.urlsplit(url)
        key = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        with self._cv:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sns-http")
            return lane

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (not self._heap or self._heap[0].due > time.monotonic()):
                    self._cv.wait(None if not self._heap else max(self._heap[0].due - time.monotonic(), 0.0))
                if self._stopping:
                    return
                job = heapq.heappop(self._heap)
            try:
                self._lane(job.url).submit(self._post, job)
            except RuntimeError:  # the lane is shut down: the deliverer is stopping
                return
            except ValueError:  # a URL urllib cannot even split (Subscribe should have refused it)
                log.warning("SNS delivery to %s dropped: the URL cannot be parsed", without_credentials(job.url))

    def _post(self, job: _Job) -> None:
        status: int | None = None
        error: str | None = None
        try:
            url, authorization = split_credentials(job.url)
            request = urllib.request.Request(url, data=job.body, headers={**job.headers, **authorization}, method="POST")
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
                status = answer.status
                answer.read()
        except urllib.error.HTTPError as failure:
            status = failure.code
        except Exception as failure:  # noqa: BLE001 - refused, timed out, bad URL: all are a failed attempt
            error = f"{type(failure).__name__}: {failure}"
        ok = status is not None and 200 <= status < 300
        self.recent.append(Attempt(without_credentials(job.url), job.headers.get("x-amz-sns-message-type", ""), job.attempt + 1, status, error))
        if ok:
            return
        if job.attempt < len(job.delays):
            delay = job.delays[job.attempt]
            job.attempt += 1
            with self._cv:
                job.due, job.seq = time.monotonic() + delay, next(self._seq)
                heapq.heappush(self._heap, job)
                self._cv.notify()
        else:
            log.warning("SNS delivery to %s abandoned after %d attempts (last: %s)", without_credentials(job.url), job.attempt + 1, error or status)
