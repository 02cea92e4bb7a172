"""moto hooks: the patches that let a request be attributed to the services, backends and entries it touched.

* ``BackendDict.__getitem__``: the services a request looked up (also when one service mutates another);
* ``AccountSpecificBackend.__getitem__``: region backends a request made moto create (a read that
  creates EC2's default VPC is persisted, so its random ids stay stable);
* ``FakeKey.value``: S3 bodies go to the blob store (:mod:`s3bodies`);
* the ``__init__`` of backends with sharded or paged collections: those collections are tracking
  dicts from the start (also after ``reset()``), so commits never swap a dict under a running request.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from rentaliq.local.state import tracking
from rentaliq.local.state.references import BackendNames, moto
from rentaliq.local.state.s3bodies import install_value_hook


class MotoHooks:
    """Installs the hooks once per process; ``installed`` tells whether state is being persisted."""

    def __init__(self, names: BackendNames):
        self.names = names
        self.installed = False
        self._hooked_classes: set[type] = set()
        self._lock = threading.Lock()

    def install(self, blobs: Any) -> None:
        if self.installed:
            return
        m = moto()
        bd_cls, asb_cls = m.BackendDict, m.AccountSpecificBackend
        orig_bd_getitem = bd_cls.__getitem__

        def bd_getitem(self_: Any, account_id: str) -> Any:
            ctx = tracking.current_context()
            if ctx is not None:
                ctx.touched[id(self_)] = self_
            return orig_bd_getitem(self_, account_id)

        bd_cls.__getitem__ = bd_getitem
        orig_asb_getitem = asb_cls.__getitem__
        hooks = self

        def asb_getitem(self_: Any, region_name: str) -> Any:
            region = "aws" if region_name == "global" else region_name
            if not dict.__contains__(self_, region):  # moto may create this backend now
                hooks.hook_backend_class(self_.backend)
                ctx = tracking.current_context()
                if ctx is not None:
                    ctx.created_asbs.append(self_)
            return orig_asb_getitem(self_, region_name)

        asb_cls.__getitem__ = asb_getitem
        install_value_hook(m.FakeKey, blobs)
        for bd in list(bd_cls._instances):
            self.hook_backend_class(bd.backend)
        self.installed = True

    def hook_backend_class(self, cls: type) -> None:
        """Make new backends of ``cls`` track their sharded/paged collections from ``__init__`` on."""
        with self._lock:
            if cls in self._hooked_classes:
                return
            self._hooked_classes.add(cls)
            if not (tracking.sharded_attrs_of(cls) or tracking.paged_attrs_of(cls)):
                return
            orig_init = cls.__init__
            hooks = self

            @functools.wraps(orig_init)
            def __init__(self_: Any, *args: Any, **kwargs: Any) -> None:
                orig_init(self_, *args, **kwargs)
                if type(self_) is cls:
                    hooks.adopt_backend(self_)

            cls.__init__ = __init__  # type: ignore[misc]

    def adopt_backend(self, be: Any) -> None:
        key = self.names.key_for_class(type(be))
        if key is None:
            return
        acct, region = be.account_id, be.region_name
        d = vars(be)
        for attr in tracking.sharded_attrs_of(type(be)):
            coll = d.get(attr)
            if tracking.is_plain_dict(coll) and tracking.trackable(coll):
                d[attr] = tracking.new_tracked_dict(dict.items(coll), (key, acct, region, attr))
        for attr in tracking.paged_attrs_of(type(be)):
            if tracking.trackable(d.get(attr)):
                d[attr] = tracking.as_tracked_store(d[attr], (key, acct, region, attr))
