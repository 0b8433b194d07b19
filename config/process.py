"""What a long-running process (the scheduler, each worker process) does once it has started."""

from __future__ import annotations

import gc


def freeze_start_up_objects() -> int:
    """Move the objects alive once the process has started (modules, classes, the app, its
    settings, statements and templates) out of the garbage collector's sight
    (``gc.freeze``); returns how many.

    A full collection (generation 2) walks every tracked object: about 190 000 in the
    scheduler's process and 200 000 in a worker's (the PDF library is loaded at start),
    about 100 ms of CPU on the benchmark machine, every so often. Frozen, the start-up
    objects are never walked again; a collection walks only what the ticks and the messages
    leave. They are never freed by the collector either: they live as long as the process
    anyway. Garbage of the start-up is collected first.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
