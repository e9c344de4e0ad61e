"""Feedback through the LiteLLM front door: by response or decision id, to the deployment that answered.

Every routed response names its decision (``decision_id``). The engine remembers each
decision (``Router(remember_decisions=True)``, turned on by the front door) with the
profile it put first; when another deployment answered (a retry, a fallback, a
cooled-down first choice), :class:`AnswerBook` keeps that decision and who answered,
so feedback by id credits the deployment whose answer the user saw. Counting is the
engine's (:meth:`uniroute.Router.record_feedback`); this module only finds what to credit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...engine.decision import Decision, short_repr
from ...engine.feedback import RecentItems, check_feedback
from ...engine.router import Router
from ...exceptions import InputError, UnknownDecisionError, UnrankedAnswerError

if TYPE_CHECKING:
    from ._ranker import Record

#: Weight of the 0 recorded for a failed deployment when ``feedback_on_failure`` is on:
#: a deployment error says little about answer quality, so it counts as a quarter of a result.
FAILURE_WEIGHT = 0.25


#: What :class:`AnswerBook` keeps per decision id: the engine's decision and who answered
#: (``None`` when a deployment uniroute did not rank answered).
Answer = tuple[Decision, str | None]


class AnswerBook(RecentItems[Answer]):
    """Decisions whose answer did not come from the engine's first choice, by ``decision_id``.

    Bounded in size (oldest out) and age (``ttl``), like the engine's decision cache.
    """


def note_answer(book: AnswerBook, done: Record) -> Answer | None:
    """Remember ``done`` (a decision completed with who answered) if the engine's pick did not answer;
    returns what was kept (None if the pick answered)."""
    decision = done.decision
    ranking = done.get("ranking") or ()
    if decision is None or not ranking:
        return None
    answered = done.get("answered") or done.get("deployment")
    profile = next((row["profile"] for row in ranking if row["deployment"] == answered), None)
    if profile == ranking[0]["profile"]:
        return None
    kept = (decision, answered if profile is not None else None)
    book.put(decision.decision_id, kept)
    return kept


def check_score(score: Any, weight: Any) -> None:
    """Raise :class:`~uniroute.InputError` for a score outside [0, 1] / a bool, or a bad weight."""
    check_feedback(np.zeros(1), score, weight, 1)


def credit(router: Router, book: AnswerBook, target: Any, score: Any, weight: float = 1.0) -> str:
    """Record ``score`` for the deployment that answered ``target``; returns the profile credited.

    ``target``: a response (``_hidden_params["uniroute"]``), that decision mapping, or
    its ``decision_id``. Raises :class:`UnknownDecisionError` for an id this process
    does not know, :class:`~uniroute.InputError` for a bad score or weight, or when a
    deployment uniroute did not rank answered, and lets
    :class:`~uniroute.FeedbackUnavailableError` through (Redis unreachable: retry later).
    """
    check_score(score, weight)
    record = _decision_of(target)
    if record is not None:
        decision_id = record.get("decision_id")
        decision = getattr(record, "decision", None)
        if decision is not None:  # the response itself: credit who answered, no lookup
            return _credit_decision(
                router, decision, record.get("answered") or record.get("deployment"), score, weight
            )
    else:
        decision_id = target
    if not isinstance(decision_id, str) or not decision_id:
        raise InputError(
            f"feedback needs a decision id (the x-uniroute-decision-id header, or "
            f"response._hidden_params['uniroute']['decision_id']), got {decision_id!r}"
        )
    known = book.get(decision_id)
    if known is not None:
        return _credit_decision(router, known[0], known[1], score, weight)
    try:
        return router.record_feedback(decision_id, score, weight=weight)
    except UnrankedAnswerError:  # another replica saw a model outside the ranking answer it
        raise
    except InputError as exc:  # the score was checked above: the id is what is unknown
        raise UnknownDecisionError(
            f"decision {short_repr(decision_id)} is unknown or expired here (decisions are kept for 1 h, "
            f"in the process that routed them); send feedback to the replica that answered, sooner"
        ) from exc


def _credit_decision(router: Router, decision: Decision, deployment: Any, score: Any, weight: float) -> str:
    if not isinstance(deployment, str) or deployment not in decision.candidates:
        raise UnrankedAnswerError(
            f"decision {decision.decision_id!r} was answered by {deployment!r}, a deployment uniroute did "
            "not rank (a fallback to a model group uniroute does not route); there is no profile to credit"
        )
    return router.record_feedback(decision, score, weight=weight, model=deployment)


def _decision_of(target: Any) -> Mapping[str, Any] | None:
    """The uniroute decision of a response (``_hidden_params["uniroute"]``) or the mapping itself."""
    if isinstance(target, Mapping):
        return target
    hidden = getattr(target, "_hidden_params", None)
    if isinstance(hidden, Mapping):
        decision = hidden.get("uniroute")
        if isinstance(decision, Mapping):
            return decision
        raise InputError(
            "this response carries no uniroute decision (its model group has no profiled deployment, "
            "or the router was not set up with uniroute.integrations.litellm.install)"
        )
    return None
