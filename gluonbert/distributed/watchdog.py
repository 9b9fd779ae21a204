"""Bounded waits: end a process that has made no progress for too long.

A worker blocked in a KVStore call (creating the store, a push, a pull, a barrier) waits in
C++ for peers that may be dead, and nothing in MXNet 1.9.1 ends that wait: ps-lite reads
``PS_HEARTBEAT_INTERVAL``/``PS_HEARTBEAT_TIMEOUT`` only to book-keep dead nodes for a recovery
MXNet does not use, and ``PS_RESEND`` resends unanswered messages without ever giving up
(measured: with both set, the surviving worker of a job whose other worker was killed still
waited 30 s later). The launcher stops a job when one of its processes dies; this watchdog
bounds the wait where no launcher watches every process (several hosts, a hung peer); the
training engine's ``callbacks.Heartbeat`` beats it at every update.
"""
import os
import sys
import threading
import time

EXIT_NO_PROGRESS = 124  # as coreutils' timeout


class Watchdog:
    """Ends this process with status 124 and a message when ``beat`` is not called for
    ``timeout`` seconds.

    ``os._exit`` is the only way out: the main thread may be blocked inside a C++ call
    (ctypes releases the GIL, so this thread still runs). ``waiting_for`` says in the message
    what the process was doing; ``beat(waiting_for)`` updates it.
    """

    def __init__(self, timeout, waiting_for):
        if not timeout > 0:
            raise ValueError(f'timeout={timeout!r}; expected a positive number of seconds')
        self.timeout, self.waiting_for = float(timeout), waiting_for
        self._last = time.monotonic()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name='gluonbert-watchdog',
                                        daemon=True)
        self._thread.start()

    def beat(self, waiting_for=None):
        """Progress was made; the next wait is for ``waiting_for`` (default: unchanged)."""
        self._last = time.monotonic()
        if waiting_for is not None:
            self.waiting_for = waiting_for

    def stop(self):
        self._stopped.set()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _watch(self):
        while not self._stopped.wait(min(1.0, self.timeout)):
            idle = time.monotonic() - self._last
            if idle > self.timeout:
                sys.stderr.write(f'gluonbert: no progress for {idle:.0f} s (timeout '
                                 f'{self.timeout:g} s) while waiting for {self.waiting_for}; '
                                 f'exiting with status {EXIT_NO_PROGRESS}\n')
                sys.stderr.flush()
                sys.stdout.flush()
                os._exit(EXIT_NO_PROGRESS)
