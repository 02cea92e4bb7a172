"""`rentaliq compliance`: what the spec's compliance claims (SOC 2, HIPAA, PCI DSS, GDPR) rest on, and what is missing.

``controls`` holds the data (frameworks, controls with their constructs, nag rules and verify checks, gaps);
``report`` turns it into one environment's report, read from its spec.
"""

from __future__ import annotations

from rentaliq.ops.compliance.controls import CONTROLS, FRAMEWORKS, GAPS, Control, Framework, Gap, VerifyCheck
from rentaliq.ops.compliance.report import ComplianceReport, FrameworkReport, compliance_report, verify_check_name

__all__ = [
    "CONTROLS",
    "FRAMEWORKS",
    "GAPS",
    "ComplianceReport",
    "Control",
    "Framework",
    "FrameworkReport",
    "Gap",
    "VerifyCheck",
    "compliance_report",
    "verify_check_name",
]
