"""Former home of the local cloud's persistence, now :mod:`rentaliq.local.state`.

Kept for two reasons: callers' imports (``from rentaliq.local.persistence import ...``), and the
snapshot files written before the split, whose pickles name their load functions and marker
classes in this module (``rentaliq.local.persistence._load_ref``, ``_PagedIndex``, ...): they load
through the aliases below.  New snapshots name :mod:`rentaliq.local.state` modules.
"""

from __future__ import annotations

from rentaliq.local.state import (  # noqa: F401 - re-exported
    FORMAT_VERSION,
    Persistence,
    PersistenceError,
    StateFormatError,
    StateLockedError,
    atomic_write,
    check_state_dir,
    classify,
    current,
)
from rentaliq.local.state import reducers as _reducers
from rentaliq.local.state import references as _references
from rentaliq.local.state import s3bodies as _s3bodies
from rentaliq.local.state import tracking as _tracking

# Names pickled by snapshots written before the split (format version 1): do not remove.
_load_ref = _references.load_ref
_new_fakekey = _s3bodies.new_fakekey
_set_fakekey_state = _s3bodies.set_fakekey_state
_new_dictsub = _reducers.new_dictsub
_set_dictsub_state = _reducers.set_dictsub_state
_new_model = _reducers.new_model
_new_spooled = _reducers.new_spooled
_make_function = _reducers.make_function
_make_weakref = _reducers.make_weakref
_dead = _reducers.dead
_load_private_key = _reducers.load_private_key
_load_public_key = _reducers.load_public_key
_load_certificate = _reducers.load_certificate
_load_csr = _reducers.load_csr
_ShardIndex = _tracking.ShardIndex
_PagedIndex = _tracking.PagedIndex
