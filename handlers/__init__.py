"""The core of relance: accounting events, the dunning policy, calendar, money and the handlers."""
