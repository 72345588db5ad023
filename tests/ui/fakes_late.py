"""Temporary re-export for the Top-layer tests not moved yet: use ``tests.ui.fakes``."""

from tests.ui.fakes import OTHER, PART, SETTINGS, FakeServices
from wizard.errors import Cancelled

FakeLateServices = FakeServices
LateFakesMixin = FakeServices

__all__ = ["Cancelled", "FakeLateServices", "LateFakesMixin", "OTHER", "PART", "SETTINGS"]
