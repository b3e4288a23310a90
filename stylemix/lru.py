"""One small thread-safe least-recently-used cache, for every cache the library and the app keep
(latents by face, parents' images by seed, live viewers and preview sessions by session, loaded
pairs by content within a byte budget)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``size`` entries and, with ``weigh``, at most ``max_weight`` in all (the newest
    entry is kept even when it alone weighs more); reading or writing one makes it the most
    recent.  ``on_evict(key, value)`` is called, under the lock, for each entry pushed out."""

    def __init__(self, size: int | None = None, *, weigh: Callable[[V], float] | None = None,
                 max_weight: float | None = None, on_evict: Callable[[K, V], None] | None = None):
        if size is not None and size < 1:
            raise ValueError(f"an LRU cache holds at least one entry, not {size}")
        if (weigh is None) != (max_weight is None):
            raise ValueError("give weigh and max_weight together")
        self.size, self._weigh, self._max_weight, self._on_evict = size, weigh, max_weight, on_evict
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            self._trim()
        return value

    def get_or_put(self, key: K, make: Callable[[], V], keep: Callable[[V], bool] = lambda v: True) -> V:
        """The entry for ``key`` when there is one that ``keep`` accepts, else ``make()`` stored
        (under the lock: concurrent callers of one key share one value)."""
        with self._lock:
            value = self._items.get(key)
            if value is None or not keep(value):
                value = self._items[key] = make()
            self._items.move_to_end(key)
            self._trim()
            return value

    def pop(self, key: K, default: V | None = None) -> V | None:
        """Remove ``key`` (no eviction callback: the caller asked for it)."""
        with self._lock:
            return self._items.pop(key, default)

    def pop_if(self, key: K, value: V) -> bool:
        """Remove ``key`` only while it still holds ``value`` (a newer entry stays)."""
        with self._lock:
            if self._items.get(key) is value:
                del self._items[key]
                return True
            return False

    def _trim(self) -> None:
        def over() -> bool:
            if self.size is not None and len(self._items) > self.size:
                return True
            return (self._weigh is not None and len(self._items) > 1
                    and sum(self._weigh(v) for v in self._items.values()) > self._max_weight)

        while over():
            key, value = self._items.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(key, value)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: K) -> bool:
        return key in self._items
