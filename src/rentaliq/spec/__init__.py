"""The typed environment specs: the only place that holds a per-environment value.

Each spec carries every row of ARCHITECTURE.md's "Environment Comparison" table plus the values the
stacks, the local cloud, the audit and the cost estimate need. Specs are frozen; the built-in values live
in this package as one TOML file per environment, overrides come from the user's file of the same format,
and both pass the same strict validation, all problems reported at once.

- :mod:`~rentaliq.spec.models`: the fields, each with its unit and default;
- :mod:`~rentaliq.spec.loader`: built-in files, overrides, ``build_spec``/``load_spec``/``load_specs``;
- :mod:`~rentaliq.spec.rules`: the cross-field rules and ``compare_with_deployed``;
- :mod:`~rentaliq.spec.windows`, :mod:`~rentaliq.spec.aws`: RDS windows; regions, private ranges, tag values.
"""

from rentaliq.spec.deployed import DeployedValues, Finding, compare_with_deployed
from rentaliq.spec.encryption import EncryptionSpec
from rentaliq.spec.errors import SpecError
from rentaliq.spec.loader import build_spec, check_env_name, config_dir, load_overrides, load_spec, load_specs
from rentaliq.spec.models import (
    ENV_NAMES,
    INSTANCE_CLASSES,
    LOG_EXPORTS,
    MONITORING_INTERVALS,
    PERFORMANCE_INSIGHTS_RETENTION,
    SECRET_RECOVERY_WINDOWS,
    CostSpec,
    DatabaseSpec,
    EnvironmentSpec,
    EnvName,
    ExistingNetwork,
    LifecycleSpec,
    MonitoringSpec,
    NetworkSpec,
    RecoverySpec,
    SecretsSpec,
    StorageSpec,
    TagsSpec,
)

__all__ = [
    "ENV_NAMES",
    "INSTANCE_CLASSES",
    "LOG_EXPORTS",
    "MONITORING_INTERVALS",
    "PERFORMANCE_INSIGHTS_RETENTION",
    "SECRET_RECOVERY_WINDOWS",
    "CostSpec",
    "DatabaseSpec",
    "DeployedValues",
    "EncryptionSpec",
    "EnvName",
    "EnvironmentSpec",
    "ExistingNetwork",
    "Finding",
    "LifecycleSpec",
    "MonitoringSpec",
    "NetworkSpec",
    "RecoverySpec",
    "SecretsSpec",
    "SpecError",
    "StorageSpec",
    "TagsSpec",
    "build_spec",
    "check_env_name",
    "compare_with_deployed",
    "config_dir",
    "load_overrides",
    "load_spec",
    "load_specs",
]
