import pytest

from llaisys.engine import IllegalTransitionError, RequestState, RequestStatus


def test_new_state_when_created_then_waiting_and_unfinished():
    s = RequestState()
    assert s.status is RequestStatus.WAITING and not s.finished and s.reason is None


@pytest.mark.parametrize("finish, status, reason", [
    (lambda s: s.finish_stopped("</s>"), RequestStatus.FINISHED_STOPPED, "stop"),
    (lambda s: s.finish_length(), RequestStatus.FINISHED_LENGTH, "length"),
    (lambda s: s.finish_aborted("cancelled"), RequestStatus.FINISHED_ABORTED, "abort"),
])
def test_running_state_when_finished_then_final_with_reason(finish, status, reason):
    s = RequestState()
    s.admit()
    finish(s)
    assert s.status is status and s.finished and s.status.finish_reason == reason


def test_running_state_when_preempted_then_waiting_again_and_admissible():
    s = RequestState()
    s.admit()
    s.preempt()
    assert s.status is RequestStatus.WAITING
    s.admit()
    assert s.status is RequestStatus.RUNNING


def test_waiting_state_when_aborted_then_finished_aborted_with_reason():
    s = RequestState()
    s.finish_aborted("too long")
    assert s.status is RequestStatus.FINISHED_ABORTED and s.reason == "too long"


@pytest.mark.parametrize("move", ["finish_length", "finish_stopped", "preempt"])
def test_waiting_state_when_moved_illegally_then_raises(move):
    with pytest.raises(IllegalTransitionError, match="waiting"):
        getattr(RequestState(), move)()


@pytest.mark.parametrize("move", ["admit", "preempt", "finish_length"])
def test_finished_state_when_moved_then_raises_and_stays(move):
    s = RequestState()
    s.admit()
    s.finish_length()
    with pytest.raises(IllegalTransitionError):
        getattr(s, move)()
    assert s.status is RequestStatus.FINISHED_LENGTH


def test_running_state_when_admitted_again_then_raises():
    s = RequestState()
    s.admit()
    with pytest.raises(IllegalTransitionError, match="running -> running"):
        s.admit()
