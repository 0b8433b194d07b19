"""Pinned instants used across tests."""

from datetime import datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
