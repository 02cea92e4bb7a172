"""Durable state for moto's in-memory backends: survives a restart of the server, including ``kill -9``.

moto keeps every resource in plain Python objects: one ``BackendDict`` per service, holding one
``AccountSpecificBackend`` per account, holding one ``BaseBackend`` per region.  This package makes
those objects survive with the same ids, ARNs, version ids and bytes.

State directory layout
======================

::

    <state_dir>/                 mode 0711: traversable (the local PostgreSQL servers run as user
                                 postgres below it), not listable; what we write below is 0700/0600
                                 (snapshots hold secret values in clear)
      FORMAT                     {"format": "rentaliq-local-cloud-state", "version": 1,
                                  "moto": "5.2.5", "python": "3.11"}  -- anything else is refused
      lock                       flock(2)ed by the running server (one server per state dir)
      manifest.json              the commit point: generation, and per service its files
      services/
        <mod>__<attr>.<gen>.pkl                 a service's backends, minus its sharded collections
        <mod>__<attr>~<entry>.<gen>.pkl         one entry of a sharded collection (an S3 bucket, ...)
        <mod>__<attr>~<entry>~keys_<p>.<gen>.pkl  page <p> (of 256, by CRC32 of the key) of a bucket's keys
      blobs/<aa>/<sha256>        S3 object bodies, content addressed, written once, never modified
      blobs/tmp/                 blob writes in flight (cleared at start-up)
      access.log, server.json    (server.py)   server.pid, port, server.log (cloud.py)
      postgres/ ...              (extensions) the RDS instances' PostgreSQL servers

Every ``.pkl`` file is one JSON header line (service, dependencies, referenced blobs) followed by a
pickle (protocol 5).  Files are flushed to the OS (write + ``os.replace``), which is what survives
``kill -9``; ``RENTALIQ_LOCAL_FSYNC=1`` adds fsync (files and directories) for power loss.

Modules, one concern each
=========================

``layout``      the state dir, FORMAT, the manifest, and the one atomic-write helper
``blobs``       the content-addressed blob store and the file-like view of a body
``s3bodies``    S3 object bodies in the blob store, never in a snapshot
``reducers``    reduce/load functions for objects that do not pickle as they are
``codec``       the pickler and its reducer table
``references``  backend names, and references between services' objects
``tracking``    what a request touched (one tracking-class generator for sharded and paged collections)
``hooks``       the moto patches that feed the tracking
``snapshot``    what a commit writes, pickled
``commit``      the files, the manifest replacement (commit point), old-file deletion; crash test points
``restore``     loading at start-up, orphan removal
``middleware``  the WSGI middleware and the request/commit lock
``core``        :class:`Persistence`, tying them together
"""

from __future__ import annotations

from rentaliq.local.state.core import Persistence, current
from rentaliq.local.state.layout import (
    FORMAT_VERSION,
    PersistenceError,
    StateFormatError,
    StateLockedError,
    atomic_write,
    check_state_dir,
)
from rentaliq.local.state.middleware import classify

__all__ = [
    "FORMAT_VERSION",
    "Persistence",
    "PersistenceError",
    "StateFormatError",
    "StateLockedError",
    "atomic_write",
    "check_state_dir",
    "classify",
    "current",
]
