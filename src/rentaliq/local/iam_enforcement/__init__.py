"""IAM enforcement for the local cloud (issue 12 §1), off by default.

Switch: ``RENTALIQ_LOCAL_ENFORCE_IAM=1`` in the server's environment (``rentaliq local start`` passes the caller's
environment on). When on, every signed request is authorized before moto sees it:

- identity policies of IAM users and of ``sts:AssumeRole`` sessions (a session acts as its role);
- bucket policies, with ``aws:SecureTransport`` and ``s3:x-amz-server-side-encryption`` from the request;
- key policies, and ``kms:Decrypt`` on a customer-managed key to read an SSE-KMS object or a secret encrypted with it;
- explicit deny wins; denials carry AWS's codes and message text.

The local cloud's ``test`` keys are the account's root user, the deploy identity: the CLI, the deploy engine and
the local cloud's own CloudFormation providers act as root. TLS: the enforcing server also listens with TLS
(``https_port`` in ``server.json``; its certificate is issued by the local cloud's CA, ``https_ca_bundle``); only
requests that arrived over it count as ``aws:SecureTransport``, so the TLS-only bucket policies refuse plain HTTP,
as on AWS.
"""

from __future__ import annotations

import os

ENV = "RENTALIQ_LOCAL_ENFORCE_IAM"


def enabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")
