"""rentaliq.local.budgets_fixes wraps moto's budgets backend: this fails loudly when a moto upgrade moves what it relies on."""

from __future__ import annotations

import inspect

from moto.budgets import models, responses


def test_create_budget_is_the_signature_the_fix_wraps():
    assert list(inspect.signature(models.BudgetsBackend.create_budget).parameters) == ["self", "account_id", "budget", "notifications"]


def test_budgets_live_where_the_fixes_read_them():
    assert "self.budgets" in inspect.getsource(models.BudgetsBackend.__init__)
    assert {"self.budget", "self.notifications"} <= set(_assigned(models.Budget.__init__))
    assert {"self.details", "self.subscribers"} <= set(_assigned(models.Notification.__init__))
    assert isinstance(inspect.getattr_static(responses.BudgetsResponse, "backend"), property)


def _assigned(function) -> list[str]:
    return [line.strip().split("=")[0].strip() for line in inspect.getsource(function).splitlines() if line.strip().startswith("self.") and "=" in line]
