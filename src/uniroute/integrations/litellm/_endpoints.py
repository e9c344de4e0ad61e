"""The proxy's feedback endpoints, on LiteLLM's own FastAPI app and behind its own key check.

* ``POST /uniroute/feedback`` with ``{"decision_id": "...", "score": 0..1 | true | false,
  "weight": 1.0}``: 200 with the profile credited; 400 for a bad body, score or weight;
  404 for a decision this replica does not know (never routed here, or older than 1 h);
  409 when a deployment uniroute did not rank answered; 503 (``Retry-After``) when the
  decision was routed elsewhere and Redis, which would know it, is unreachable.
  ``{"events": [...]}`` (1 to 1,000
  such objects) records each and answers 200 with ``accepted``, ``rejected`` and one
  ``{"status", ...}`` result per event, in order (with ``Retry-After`` if any was a 503).
* ``GET /uniroute/feedback/stats``: what this replica accepted and rejected, and its
  feedback store's counters (for Redis: sent, buffered, delayed, dropped, connected...).

Both depend on LiteLLM's ``user_api_key_auth``: a request without a valid key gets
LiteLLM's 401 and records nothing. Recording runs in a worker thread: an id routed by
another replica is looked up in Redis, a blocking call that must not hold up the proxy's
event loop (and every request on it) while Redis is slow or unreachable. Imported only
inside a running proxy (FastAPI is part of ``litellm[proxy]``).
"""

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...exceptions import (
    FeedbackUnavailableError,
    InputError,
    UnknownDecisionError,
    UnknownModelError,
    UnrankedAnswerError,
)
from . import _compat

if TYPE_CHECKING:
    from ._proxy import UniRouteProxyRouter

FEEDBACK_PATH = "/uniroute/feedback"
STATS_PATH = "/uniroute/feedback/stats"
BODY_KEYS = frozenset({"decision_id", "score", "weight"})
MAX_BATCH = 1000
USAGE = '{"decision_id": "...", "score": 0..1 | true | false, "weight": 1.0}'
RETRY_AFTER_S = 5  # the store reconnects on its own; a client should not hammer it meanwhile


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": f"uniroute: {message}", "code": status}}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(_error_body(status, message), status_code=status)


async def _json_object(request: Request) -> dict:
    """The request's JSON object, checked before the key (a malformed body is a 400 either way)."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise HTTPException(status_code=400, detail=f"uniroute: send JSON {USAGE}")
    return body


def _record(callback: "UniRouteProxyRouter", body: Any) -> tuple[int, dict[str, Any]]:
    """Record one feedback event; (HTTP status, JSON answer)."""
    if not isinstance(body, dict) or "decision_id" not in body or "score" not in body:
        callback.count("bad_request")
        return 400, _error_body(400, f"send JSON {USAGE}")
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        callback.count("bad_request")
        return 400, _error_body(400, f"unknown key(s) {unknown}; allowed: {sorted(BODY_KEYS)}")
    weight = body.get("weight", 1.0)
    try:
        profile = callback.ranker.record_feedback(body["decision_id"], body["score"], weight)
    except UnknownDecisionError as exc:
        callback.count("unknown_decision")
        return 404, _error_body(404, str(exc))
    except FeedbackUnavailableError as exc:
        callback.count("store_unavailable")
        return 503, _error_body(503, str(exc))
    except (UnrankedAnswerError, UnknownModelError) as exc:
        callback.count("no_profile")
        return 409, _error_body(409, str(exc))
    except InputError as exc:
        callback.count("bad_request")
        return 400, _error_body(400, str(exc))
    callback.count("accepted")
    return 200, {
        "decision_id": body["decision_id"],
        "profile": profile,
        "score": body["score"],
        "weight": weight,
    }


def _record_each(callback: "UniRouteProxyRouter", events: list) -> list[dict[str, Any]]:
    """Record every event of a batch; one ``{"status", ...}`` result per event, in order."""
    results = []
    for event in events:
        status, payload = _record(callback, event)
        results.append({"status": status, **payload})
    return results


def mount(app: Any, callback: "UniRouteProxyRouter") -> None:
    """Add the feedback endpoints to the proxy's ``app`` (once), served by ``callback``."""
    if any(getattr(route, "path", None) == FEEDBACK_PATH for route in app.router.routes):
        return
    Key = Annotated[Any, Depends(_compat.proxy_key_check())]

    async def feedback(body: Annotated[dict, Depends(_json_object)], _key: Key) -> JSONResponse:
        """Record a thumbs-up/down or a graded score for a routed response (or a batch of them)."""
        if "events" not in body:
            status, payload = await run_in_threadpool(_record, callback, body)
            retry = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
            return JSONResponse(payload, status_code=status, headers=retry)
        events = body["events"]
        if set(body) != {"events"} or not isinstance(events, list) or not 0 < len(events) <= MAX_BATCH:
            callback.count("bad_request")
            return _error(400, f'send {{"events": [...]}}: a list of 1 to {MAX_BATCH} objects {USAGE}')
        results = await run_in_threadpool(_record_each, callback, events)
        accepted = sum(r["status"] == 200 for r in results)
        retry = {"Retry-After": str(RETRY_AFTER_S)} if any(r["status"] == 503 for r in results) else None
        return JSONResponse(
            {"accepted": accepted, "rejected": len(results) - accepted, "results": results}, headers=retry
        )

    async def stats(_key: Key) -> JSONResponse:
        """This replica's feedback counters and its store's."""
        return JSONResponse(callback.feedback_stats())

    app.add_api_route(FEEDBACK_PATH, feedback, methods=["POST"], tags=["uniroute"])
    app.add_api_route(STATS_PATH, stats, methods=["GET"], tags=["uniroute"])
    # first in the route list: Starlette tries routes in order, and the proxy has hundreds
    routes = app.router.routes
    routes[:0] = [routes.pop(), routes.pop()]
