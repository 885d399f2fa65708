"""Host side of a training phase: micro-batches assembled ahead of the step that eats them.

``micro_batches`` walks a resumable epoch order, gathers each batch from the cache, pads it
to a static length, asks the method for its packed capacities (``SkeletonMethod.capacities``)
and pins it on CUDA; ``Prefetch`` runs any such generator a few batches ahead in a thread
(numpy gathers and pinned copies release the GIL, so this overlaps the step's Python and the
device's work). What the step receives is ready: it only copies and computes.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import numpy as np

from .step import MicroBatch


def micro_batches(data, epoch_order: Callable[[int], list[np.ndarray]], epoch: int, position: int, *,
                  frames: int | None, capacities: Callable[[np.ndarray, int], dict[str, int]] | None = None,
                  pin: bool = False, labels: bool = False) -> Iterator[tuple[int, int, MicroBatch]]:
    """``(epoch, position after this batch, MicroBatch)`` forever, from ``(epoch, position)``.

    ``frames``: the static T (None: each batch's longest sample); ``capacities(lengths, T)``:
    the method's packed sizes for the batch; ``labels`` adds the labels as a third tensor."""
    order = epoch_order(epoch)
    if not order:
        return
    while True:
        if position >= len(order):
            epoch, position = epoch + 1, 0
            order = epoch_order(epoch)
        items = order[position]
        position += 1
        x, lengths, y = data.batch(items, frames)
        if pin:
            x, lengths, y = x.pin_memory(), lengths.pin_memory(), y.pin_memory()
        host_lengths = data.lengths[items]
        caps = capacities(host_lengths, int(x.shape[1])) if capacities is not None else {}
        tensors = (x, lengths, y) if labels else (x, lengths)
        yield epoch, position, MicroBatch(tensors, caps, int(host_lengths.sum()), int(x.shape[0] * x.shape[1]))


class Prefetch:
    """Runs a generator ``depth`` items ahead in a daemon thread; errors surface in the consumer."""

    def __init__(self, source, depth: int = 3):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), daemon=True)
        self._thread.start()

    def _offer(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source):
        try:
            for item in source:
                if not self._offer(item):
                    return
            self._offer(StopIteration())
        except BaseException as err:  # surfaced in the consumer
            self._offer(err)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if isinstance(item, StopIteration):
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


def ahead(source, enabled: bool, depth: int = 3):
    """``Prefetch(source)`` when ``enabled`` (CUDA), else ``source`` itself."""
    return Prefetch(source, depth) if enabled else source
