"""The ways in shared by the ``relance`` command and the worker: event streams, e-invoices,
status messages and bank statements applied through the same batches."""
