"""Dramatiq workers: broker set-up, middleware and the thin actors."""
