"""Start-up recovery: every stack a crash (kill -9) cut off mid-operation is brought to a state AWS would leave.

Each operation's record (``stack.rentaliq_operation``, committed before every provider call, see
:mod:`operations`) says what it did and what it was about to do:
- an interrupted CREATE is rolled back to ROLLBACK_COMPLETE: everything it created is deleted, including a
  resource whose create the crash cut off before its id was recorded (found by name or by its
  CloudFormation tags, ``Provider.locate``) and a PostgreSQL server whose RDS instance the crash lost;
- an interrupted UPDATE is rolled back to its last good template (UPDATE_ROLLBACK_COMPLETE); one cut off in
  its clean-up phase had succeeded, and finishes it;
- an interrupted DELETE ends DELETE_FAILED: run it again to finish (a resource already gone counts as deleted);
- a stack left in REVIEW_IN_PROGRESS with no resources is removed.

The rollbacks call the server over HTTP, so they run on a thread that starts before the server serves;
until they are done every CloudFormation API call waits (a caller never sees a half-recovered stack, and the
next deploy just works).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.core.common_models import CloudFormationModel

from rentaliq.local.cfn import flows
from rentaliq.local.cfn import operations as ops

log = logging.getLogger(__name__)

DELETE_INTERRUPTED = "interrupted: the local cloud stopped during this operation; delete the stack again to finish"
_done = threading.Event()
_done.set()
_WAIT_SECONDS = 600


def _backends() -> list[Any]:
    return [backend for account in cfn_models.cloudformation_backends.values() for backend in account.values()]


def recover() -> None:
    """Called before the server serves: mark what was interrupted, and roll it back on a worker thread."""
    _gate_api()
    pending: list[tuple[Any, Any, Any]] = []
    with ops.changing():
        for backend in _backends():
            for stack in list(backend.stacks.values()):
                operation = getattr(stack, "rentaliq_operation", None)
                has_resources = any(isinstance(r, CloudFormationModel) for r in stack.resource_map._parsed_resources.values())
                if operation is None:
                    if stack.status == "REVIEW_IN_PROGRESS" and not has_resources:
                        from rentaliq.local.cfn.stack_api import _forget

                        _forget(backend, stack)
                    elif stack.status.endswith("_IN_PROGRESS"):  # a state saved before operations were recorded
                        stack.status = stack.status.replace("_IN_PROGRESS", "_FAILED")
                        stack._add_stack_event(stack.status, resource_status_reason=ops.INTERRUPTED)
                    continue
                if operation.kind == "IMPORT":  # no provider call was made: nothing to undo but the state
                    stack.status = "IMPORT_ROLLBACK_COMPLETE"
                    stack._add_stack_event(stack.status, resource_status_reason=ops.INTERRUPTED)
                    stack.rentaliq_operation = None
                    continue
                if operation.kind == "DELETE":
                    stack.status = "DELETE_FAILED"
                    stack._add_stack_event("DELETE_FAILED", resource_status_reason=DELETE_INTERRUPTED)
                    stack.rentaliq_operation = None
                    continue
                pending.append((backend, stack, operation))
    ops.commit()
    if not pending:
        return
    _done.clear()
    ops.start("recovery", lambda: _recover(pending))


def _recover(pending: list[tuple[Any, Any, Any]]) -> None:
    try:
        for backend, stack, operation in pending:
            try:
                log.warning("stack %s: %s interrupted by a crash (%s); recovering", stack.name, operation.kind, stack.status)
                if operation.kind == "CREATE":
                    flows.rollback_create(backend, stack, operation, ops.INTERRUPTED)
                elif stack.status == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS":
                    flows.cleanup_update(backend, stack, operation)
                else:
                    flows.rollback_update(backend, stack, operation, ops.INTERRUPTED)
            except Exception:
                log.exception("stack %s: recovery failed", stack.name)
    finally:
        _done.set()


def wait() -> bool:
    return _done.wait(_WAIT_SECONDS)


_gated = False


def _gate_api() -> None:
    global _gated
    if _gated:
        return
    from moto.cloudformation.responses import CloudFormationResponse

    original = CloudFormationResponse.call_action

    def call_action(self):
        from rentaliq.local import state

        p = state.current()
        with p.released() if p is not None else contextlib.nullcontext():  # recovery commits: do not hold its lock
            wait()
        return original(self)

    CloudFormationResponse.call_action = call_action
    _gated = True
