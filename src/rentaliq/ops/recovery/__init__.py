"""Operator commands for RDS recovery: backups, restores (with a reversible cutover), replicas, scaling, failover.

One module per job, each driving RDS and Secrets Manager through ``Target.client`` only, so the same code
runs against the local cloud and a real AWS account:

- ``errors``    RecoveryError (one line for the user), AWS errors turned into one line, the PROD guard
- ``names``     identifiers: validation, the next free snapshot/replica name (pure)
- ``times``     parsing --to-time and checking it against the restore window (pure)
- ``instances`` the live DB instance, read once into a frozen dataclass
- ``waits``     polling with progress until an instance or snapshot is available (or gone)
- ``catalog``   automated and manual snapshots plus the restorable window (`rentaliq backups`)
- ``backup``    a manual snapshot named by the spec's convention (`rentaliq backup`)
- ``restore``   restore to a new instance in the environment's network (`rentaliq restore`)
- ``cutover``   move the environment's DB secrets to another instance, and back; its state lives on the secrets
- ``replicas``  read replicas: create, promote, delete
- ``scale``     instance class and storage (storage only grows)
- ``failover``  Multi-AZ forced failover

Nothing here prints; progress goes through a callback. Secret values are read and written, never returned
in a message.
"""
