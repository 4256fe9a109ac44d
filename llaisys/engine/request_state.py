"""RequestState: the explicit life cycle of one sequence (one sample of a request).

    waiting --admit--> running --finish--> finished_stopped | finished_length | finished_aborted
       ^                  |
       +----preempt-------+          waiting --abort--> finished_aborted

Any other transition raises IllegalTransitionError; a finished state is final.
"""

from __future__ import annotations

from enum import Enum


class RequestStatus(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED_STOPPED = "finished_stopped"
    FINISHED_LENGTH = "finished_length"
    FINISHED_ABORTED = "finished_aborted"

    @property
    def finished(self) -> bool:
        return self in _FINISH_REASON

    @property
    def finish_reason(self) -> str | None:
        """The OpenAI-style reason: "stop" | "length" | "abort", None while unfinished."""
        return _FINISH_REASON.get(self)


_FINISH_REASON = {
    RequestStatus.FINISHED_STOPPED: "stop",
    RequestStatus.FINISHED_LENGTH: "length",
    RequestStatus.FINISHED_ABORTED: "abort",
}

_ALLOWED = {
    RequestStatus.WAITING: {RequestStatus.RUNNING, RequestStatus.FINISHED_ABORTED},
    RequestStatus.RUNNING: {RequestStatus.WAITING, RequestStatus.FINISHED_STOPPED,
                            RequestStatus.FINISHED_LENGTH, RequestStatus.FINISHED_ABORTED},
}


class IllegalTransitionError(RuntimeError):
    """A state change the life cycle does not allow (e.g. finished -> running)."""


class RequestState:
    """The status of one sequence plus why it ended (a stop string, a token id, a message)."""

    __slots__ = ("status", "reason")

    def __init__(self) -> None:
        self.status = RequestStatus.WAITING
        self.reason: str | int | None = None

    @property
    def finished(self) -> bool:
        return self.status.finished

    def admit(self) -> None:
        self._move(RequestStatus.RUNNING)

    def preempt(self) -> None:
        self._move(RequestStatus.WAITING)

    def finish_stopped(self, reason: str | int | None = None) -> None:
        self._move(RequestStatus.FINISHED_STOPPED, reason)

    def finish_length(self) -> None:
        self._move(RequestStatus.FINISHED_LENGTH)

    def finish_aborted(self, reason: str) -> None:
        self._move(RequestStatus.FINISHED_ABORTED, reason)

    def _move(self, to: RequestStatus, reason: str | int | None = None) -> None:
        if to not in _ALLOWED.get(self.status, ()):
            raise IllegalTransitionError(f"illegal transition {self.status.value} -> {to.value}")
        self.status = to
        self.reason = reason

    def __repr__(self) -> str:
        return f"RequestState({self.status.value}, reason={self.reason!r})"
