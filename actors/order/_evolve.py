"""``evolve(state, event) -> state``: how each event changes an order.

Pure and total over the event types: every move of a dimension goes through
:func:`check_transition`, so an event the tables forbid raises
:class:`InvalidTransition` and an event that contradicts the state in another
way (unknown ids, too few units) raises :class:`EventRejected`. Nothing is
applied partially: the caller keeps the old state.

Facts that are legal moves but break a business rule (a capture after a
cancellation, a second capture of one authorization, a refund beyond what
was captured) are recorded as told, because money really moved; the
invariants in :mod:`orderloom.actors.order._invariants` flag them as wrong actions.

Payment status and lifecycle progress are *derived* after every event
(:func:`_settle`) from the money records and the line items, and each
derived change is checked against its table like any other move.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

from . import _messages as m
from ._errors import EventRejected
from ._order_state import (
    replace,
    IN_FLIGHT,
    SHIPPED_STATES,
    Authorization,
    CancelRequest,
    Capture,
    FulfillmentOrder,
    Handoff,
    Hold,
    LineItem,
    Notification,
    OrderState,
    PaymentRequest,
    Refund,
    ReturnCase,
    Shortage,
    SourcingStep,
    by_id,
    changed_fields,
    replace_by_id,
)
from ._states import (
    AuthorizationStatus as AuthS,
    Decision,
    FulfillmentStatus as FS,
    HoldReason,
    HoldStatus,
    Lifecycle as L,
    LineItemQuantityState as Q,
    NotificationKind,
    Payment,
    PaymentOperation as Op,
    ReleaseBasis,
    RequestStatus,
    ShipmentStatus as SS,
    SourcingKind,
    check_transition,
)

__all__ = ["evolve"]


def evolve(state: OrderState, event: m.Event) -> OrderState:
    """Apply one event to an order, without deduplication (see ``apply`` for that).

    Raises:
        InvalidTransition: the event would move a dimension where its table forbids.
        EventRejected: the event contradicts the state otherwise.
    """
    if event.order_id != state.order_id:
        _reject(state, event, f"event is for order {event.order_id}")
    if not state.placed and not isinstance(event, m.OrderPlaced):
        _reject(state, event, "the order has not been placed yet")
    changes = _dispatch(state, event)
    changes["version"] = state.version + 1
    changes["seen_event_ids"] = (*state.seen_event_ids, event.event_id)
    changes["source_seqs"] = _advance(state.source_seqs, event.source, event.source_seq)
    new = replace(state, **changes)
    if type(event) in _FACTS:  # automation's facts move no money and no units
        return new
    settled = _settled(new)
    return replace(new, **settled) if settled else new


def _advance(
    seqs: tuple[tuple[str, int], ...], source: str, seq: int
) -> tuple[tuple[str, int], ...]:
    """``seqs`` (sorted by source) with ``source`` at no less than ``seq``."""
    for i, (name, last) in enumerate(seqs):
        if name == source:
            if seq <= last:
                return seqs
            return (*seqs[:i], (source, seq), *seqs[i + 1:])
    return tuple(sorted((*seqs, (source, seq))))


Changes = dict[str, Any]
"""The fields of an :class:`OrderState` an event changes, with their new values."""

# What automation learnt or asked for: no payment or lifecycle moves on them.
_FACTS = frozenset({
    m.OrderScreened, m.AddressVerified, m.ShortageRecorded, m.CancellationRequested,
    m.RiskReplayRequested,
})

_FULFILLMENT_EVENTS = frozenset({
    m.FulfillmentOrderCreated, m.FulfillmentSubmitted, m.FulfillmentAccepted,
    m.FulfillmentRejected, m.FulfillmentCanceled, m.ItemsPicked, m.LabelCreated, m.Shipped,
    m.ShipmentDelayed, m.Delivered, m.ShipmentReturned,
})


def _dispatch(s: OrderState, e: m.Event) -> Changes:
    if type(e) in _FULFILLMENT_EVENTS:
        # Half of all events; skip the twenty order-level cases they would
        # fall through (the ``case _`` below routes them the same way).
        return _fulfillment_event(s, e)
    match e:
        case m.OrderPlaced():
            return _placed(s, e)
        case m.PaymentAuthorizationRequested():
            return _requested(s, e, e.request_id, Op.AUTHORIZE, e.amount, None)
        case m.PaymentCaptureRequested():
            _authorization(s, e, e.authorization_id)
            return _requested(s, e, e.request_id, Op.CAPTURE, e.amount, e.authorization_id)
        case m.PaymentRefundRequested():
            return _requested(s, e, e.request_id, Op.REFUND, e.amount, None)
        case m.PaymentVoidRequested():
            _authorization(s, e, e.authorization_id)
            return _requested(s, e, e.request_id, Op.VOID, 0, e.authorization_id)
        case m.PaymentAuthorized():
            return _authorized(s, e)
        case m.PaymentCaptured():
            return _captured(s, e)
        case m.PaymentRefunded():
            requests = _resolved(s, e, e.request_id, Op.REFUND, RequestStatus.SUCCEEDED)
            refund = Refund(refund_id=e.refund_id, amount=e.amount, at_version=s.version + 1)
            return {"payment_requests": requests, "refunds": (*s.refunds, refund)}
        case m.PaymentVoided():
            auths = _auth_statuses(s, e, e.authorization_id, AuthS.VOIDED)
            requests = _resolved(s, e, e.request_id, Op.VOID, RequestStatus.SUCCEEDED)
            return {"authorizations": auths, "payment_requests": requests}
        case m.AuthorizationExpired():
            auths = _auth_statuses(s, e, e.authorization_id, AuthS.EXPIRED)
            return {"authorizations": auths}
        case m.PaymentFailed():
            return _payment_failed(s, e)
        case m.PaymentOutcomeUnknown():
            return _resolve(s, e, e.request_id, None, RequestStatus.UNKNOWN)
        case m.RiskAssessed():
            if e.level is not s.risk:
                check_transition(s.order_id, "risk", s.risk, e.level)
            if e.recommendation is not s.risk_recommendation:
                check_transition(s.order_id, "risk_recommendation", s.risk_recommendation,
                                 e.recommendation)
            return {"risk": e.level, "risk_recommendation": e.recommendation}
        case m.ShipmentApproved():
            return {"ship_approved_by": e.approved_by, "ship_approver": e.approver}
        case m.LineItemsCanceled():
            lines = _moved_lines(s, e, ((line.line_id, line.quantity, Q.ORDERED, Q.CANCELED)
                                        for line in e.lines))
            return {} if lines is s.line_items else {"line_items": lines}
        case m.HoldOpened() | m.HoldHandedOff() | m.HoldReleased():
            return _hold_event(s, e)
        case m.CustomerNotified():
            return _notified(s, e)
        case m.OrderCanceled():
            return _canceled(s, e)
        case m.ReturnRequested() | m.ReturnReceived():
            return _return_event(s, e)
        case m.OrderClosed():
            return _set_lifecycle(s, L.CLOSED)
        case m.OrderScreened():
            return {"screened": True, "duplicate_of": e.duplicate_of}
        case m.AddressVerified():
            return {"address_usable": e.usable}
        case m.ShortageRecorded():
            return _shortage_recorded(s, e)
        case m.CancellationRequested():
            return {"cancel_request": CancelRequest(
                reason=e.reason, requested_by=e.requested_by, approver=e.approver)}
        case m.RiskReplayRequested():
            return {"risk_replay_requested": True}
        case _:
            return _fulfillment_event(s, e)


# -- helpers ------------------------------------------------------------------------


def _reject(s: OrderState, e: m.Event, reason: str) -> NoReturn:
    raise EventRejected(s.order_id, e.event_id, reason)


def _set_lifecycle(s: OrderState, target: L) -> Changes:
    """Move lifecycle progress; while on hold, the held progress moves instead."""
    if target is s.progress:
        return {}
    field = "held_lifecycle" if s.held_lifecycle is not None else "lifecycle"
    return {field: _moved(s, s.progress, target)}


def _moved(s: OrderState, progress: L, target: L) -> L:
    """``target``, once the move of lifecycle progress from ``progress`` to it
    is checked against the table (none is needed when they are equal)."""
    if target is not progress:
        check_transition(s.order_id, "lifecycle", progress, target)
    return target


def _move_units(
    s: OrderState, e: m.Event, line_id: str, n: int, src: Q, dst: Q
) -> Changes:
    lines = _moved_lines(s, e, ((line_id, n, src, dst),))
    return {} if lines is s.line_items else {"line_items": lines}


def _moved_lines(
    s: OrderState, e: m.Event, moves: Iterable[tuple[str, int, Q, Q]]
) -> tuple[LineItem, ...]:
    """``s``'s line items after each ``(line_id, n, src, dst)`` move in turn
    (each checked as one ``_move_units`` would check it), so an event that
    moves several lines builds one new state, not one per line."""
    lines = s.line_items
    for line_id, n, src, dst in moves:
        line = by_id(lines, "line_id", line_id)
        if line is None:
            _reject(s, e, f"unknown line item {line_id}")
        if n == 0:
            continue
        check_transition(s.order_id, f"line_item[{line_id}]", src, dst)
        # The buckets are the line's fields, named by the members' values;
        # read each name once (``Enum.value`` is a Python-level property).
        src_field, dst_field = src.value, dst.value
        have: int = getattr(line, src_field)
        if have < n:
            _reject(s, e, f"line {line_id} has {have} {src_field} units, needs {n}")
        changes: dict[str, Any] = {src_field: have - n,
                                   dst_field: getattr(line, dst_field) + n}
        moved: LineItem = replace(line, **changes)
        lines = tuple([moved if item.line_id == line_id else item for item in lines])
    return lines


def _authorization(s: OrderState, e: m.Event, authorization_id: str) -> Authorization:
    auth = s.authorization(authorization_id)
    if auth is None:
        _reject(s, e, f"unknown authorization {authorization_id}")
    return auth


def _auth_statuses(
    s: OrderState, e: m.Event, authorization_id: str, to: AuthS
) -> tuple[Authorization, ...]:
    """``s``'s authorizations with one moved to ``to`` (the caller builds the
    state, so an event that also resolves a request copies the order once)."""
    auth = _authorization(s, e, authorization_id)
    check_transition(s.order_id, f"authorization[{authorization_id}]", auth.status, to)
    new = replace(auth, status=to)
    return replace_by_id(s.authorizations, "authorization_id", new)


def _request(s: OrderState, e: m.Event, request_id: str) -> PaymentRequest:
    req = s.request(request_id)
    if req is None:
        _reject(s, e, f"unknown payment request {request_id}")
    return req


def _requested(
    s: OrderState, e: m.Event, request_id: str, op: Op, amount: int, auth_id: str | None
) -> Changes:
    if s.request(request_id) is not None:
        _reject(s, e, f"payment request {request_id} already exists")
    req = PaymentRequest(request_id=request_id, operation=op, amount=amount,
                         authorization_id=auth_id, status=RequestStatus.PENDING,
                         at_version=s.version + 1)
    return {"payment_requests": (*s.payment_requests, req)}


def _resolved(
    s: OrderState, e: m.Event, request_id: str | None, op: Op | None, to: RequestStatus
) -> tuple[PaymentRequest, ...]:
    """``s``'s payment requests with the gateway's answer to one of ours
    recorded (None: nobody here asked). Every gateway answer also records
    money or a failure, so the caller builds the new state once with both."""
    if request_id is None:
        return s.payment_requests
    req = _request(s, e, request_id)
    if op is not None and req.operation is not op:
        _reject(s, e, f"request {request_id} was a {req.operation.value}, not a {op.value}")
    if req.status is to:
        return s.payment_requests
    check_transition(s.order_id, f"payment_request[{request_id}]", req.status, to)
    new = replace(req, status=to)
    return replace_by_id(s.payment_requests, "request_id", new)


def _resolve(
    s: OrderState, e: m.Event, request_id: str | None, op: Op | None, to: RequestStatus
) -> Changes:
    """Record the gateway's answer to one of our requests (None: nobody here asked)."""
    requests = _resolved(s, e, request_id, op, to)
    return {} if requests is s.payment_requests else {"payment_requests": requests}


def _payment_failed(s: OrderState, e: m.PaymentFailed) -> Changes:
    """Record the refusal on its request (why, too: retries count the
    gateway's unavailability); a refused capture counts until a person
    decides the order's awaiting-payment case."""
    req = _request(s, e, e.request_id)
    requests = _resolved(s, e, e.request_id, None, RequestStatus.FAILED)
    if requests is not s.payment_requests:
        failed = by_id(requests, "request_id", e.request_id)
        if failed is not None:
            requests = replace_by_id(requests, "request_id", replace(failed, failure=e.reason))
    authorize = req.operation is Op.AUTHORIZE
    return {"payment_requests": requests,
            "failed_authorizations": s.failed_authorizations + int(authorize),
            "capture_failures": s.capture_failures + int(req.operation is Op.CAPTURE)}


def _shortage_recorded(s: OrderState, e: m.ShortageRecorded) -> Changes:
    """Keep the latest report per rejected fulfillment order, in arrival order."""
    _fo(s, e, e.fulfillment_order_id)
    report = Shortage(fulfillment_order_id=e.fulfillment_order_id,
                      warehouse_id=e.warehouse_id, available=e.available)
    if by_id(s.shortages, "fulfillment_order_id", e.fulfillment_order_id) is not None:
        return {"shortages": replace_by_id(s.shortages, "fulfillment_order_id", report)}
    return {"shortages": (*s.shortages, report)}


def _placed(s: OrderState, e: m.OrderPlaced) -> Changes:
    if s.placed:
        _reject(s, e, "the order was already placed")
    lines = tuple(
        LineItem(line_id=li.line_id, sku=li.sku, unit_price=li.unit_price,
                 quantity=li.quantity, ordered=li.quantity)
        for li in e.lines
    )
    return {"placed_at": e.occurred_at, "customer_id": e.customer_id,
            "currency": e.currency, "line_items": lines}


def _authorized(s: OrderState, e: m.PaymentAuthorized) -> Changes:
    if s.authorization(e.authorization_id) is not None:
        _reject(s, e, f"authorization {e.authorization_id} already recorded")
    requests = _resolved(s, e, e.request_id, Op.AUTHORIZE, RequestStatus.SUCCEEDED)
    auth = Authorization(authorization_id=e.authorization_id, amount=e.amount,
                         status=AuthS.OPEN, at_version=s.version + 1)
    return {"payment_requests": requests, "authorizations": (*s.authorizations, auth)}


def _captured(s: OrderState, e: m.PaymentCaptured) -> Changes:
    auth = _authorization(s, e, e.authorization_id)
    auths = s.authorizations
    if auth.status is not AuthS.CAPTURED:
        auths = _auth_statuses(s, e, e.authorization_id, AuthS.CAPTURED)
    # A second capture of a captured authorization is recorded, not refused:
    # the money moved. never_two_captures_per_authorization flags it.
    requests = _resolved(s, e, e.request_id, Op.CAPTURE, RequestStatus.SUCCEEDED)
    capture = Capture(capture_id=e.capture_id, authorization_id=e.authorization_id,
                      amount=e.amount, at_version=s.version + 1)
    return {"authorizations": auths, "payment_requests": requests,
            "captures": (*s.captures, capture)}


def _fo(s: OrderState, e: m.Event, fulfillment_order_id: str) -> FulfillmentOrder:
    fo = s.fulfillment_order(fulfillment_order_id)
    if fo is None:
        _reject(s, e, f"unknown fulfillment order {fulfillment_order_id}")
    return fo


def _put_fo(s: OrderState, fo: FulfillmentOrder) -> Changes:
    return {"fulfillment_orders": replace_by_id(s.fulfillment_orders, "fulfillment_order_id", fo)}


def _put_fo_moving(
    s: OrderState, e: m.Event, fo: FulfillmentOrder, moves: Iterable[tuple[str, int, Q, Q]]
) -> Changes:
    """``_put_fo`` and the line moves (checked in turn)."""
    return {"fulfillment_orders": replace_by_id(s.fulfillment_orders, "fulfillment_order_id", fo),
            "line_items": _moved_lines(s, e, moves)}


def _fo_status(s: OrderState, fo: FulfillmentOrder, to: FS, **changes: Any) -> FulfillmentOrder:
    """``fo`` moved to status ``to``, with any other ``changes`` the same event
    makes (one copy rather than one per field)."""
    if fo.status is not to:
        check_transition(s.order_id, f"fulfillment[{fo.fulfillment_order_id}]", fo.status, to)
    return replace(fo, status=to, **changes)


def _fo_shipment(
    s: OrderState, fo: FulfillmentOrder, to: SS, **changes: Any
) -> FulfillmentOrder:
    """``fo``'s shipment moved to ``to``, with the event's other ``changes``."""
    check_transition(s.order_id, f"shipment[{fo.fulfillment_order_id}]", fo.shipment, to)
    return replace(fo, shipment=to, **changes)


def _unassign(s: OrderState, e: m.Event, fo: FulfillmentOrder) -> Changes:
    """Put a fulfillment order's units back to ORDERED (rejected or canceled)."""
    lines = _moved_lines(s, e, _unassign_moves(fo))
    return {} if lines is s.line_items else {"line_items": lines}


def _unassign_moves(fo: FulfillmentOrder) -> list[tuple[str, int, Q, Q]]:
    src = Q.PICKED if fo.picked else Q.ALLOCATED
    return [(line.line_id, line.quantity, src, Q.ORDERED) for line in fo.lines]


def _fulfillment_event(s: OrderState, e: m.Event) -> Changes:
    match e:
        case m.FulfillmentOrderCreated():
            return _fo_created(s, e)
        case m.FulfillmentSubmitted():
            release = (ReleaseBasis.PAYMENT_SECURED if s.payment_secured
                       else ReleaseBasis.APPROVED if s.ship_approved_by is not None else None)
            return _put_fo(s, _fo_status(s, _fo(s, e, e.fulfillment_order_id), FS.SUBMITTED,
                                         release=release))
        case m.FulfillmentAccepted():
            return _put_fo(s, _fo_status(s, _fo(s, e, e.fulfillment_order_id), FS.ACCEPTED))
        case m.FulfillmentRejected() | m.FulfillmentCanceled():
            rejected = isinstance(e, m.FulfillmentRejected)
            to = FS.REJECTED if rejected else FS.CANCELED
            fo = _fo(s, e, e.fulfillment_order_id)
            if fo.status in (FS.REJECTED, FS.CANCELED):
                # The warehouse confirming a cancel the coordinator already
                # recorded: its units were released then; releasing them again
                # would take another fulfillment order's allocation.
                return {}
            redrive = isinstance(e, m.FulfillmentCanceled) and e.redrive
            if not (rejected or redrive):
                return _put_fo_moving(s, e, _fo_status(s, fo, to), _unassign_moves(fo))
            # The warehouse failed the order: sourcing tries the next one.
            step = SourcingStep(kind=SourcingKind.REJECTED if rejected else SourcingKind.WITHDRAWN,
                                warehouse_id=fo.warehouse_id)
            return {"fulfillment_orders": replace_by_id(
                        s.fulfillment_orders, "fulfillment_order_id", _fo_status(s, fo, to)),
                    "line_items": _moved_lines(s, e, _unassign_moves(fo)),
                    "sourcing": (*s.sourcing, step)}
        case m.ItemsPicked():
            fo = _fo(s, e, e.fulfillment_order_id)
            if fo.picked:
                _reject(s, e, f"fulfillment order {fo.fulfillment_order_id} already picked")
            return _put_fo_moving(
                s, e, _fo_status(s, fo, FS.IN_PROGRESS, picked=True),
                [(line.line_id, line.quantity, Q.ALLOCATED, Q.PICKED) for line in fo.lines])
        case m.LabelCreated():
            fo = _fo(s, e, e.fulfillment_order_id)
            if fo.status not in IN_FLIGHT:
                _reject(s, e, f"no label for a fulfillment order that is {fo.status.value}")
            return _put_fo(s, _fo_shipment(s, fo, SS.LABEL_CREATED, carrier=e.carrier,
                                           tracking_number=e.tracking_number))
        case m.Shipped():
            return _shipped(s, e)
        case m.ShipmentDelayed():
            return _put_fo(s, _fo_shipment(s, _fo(s, e, e.fulfillment_order_id), SS.DELAYED))
        case m.Delivered():
            return _put_fo(s, _fo_shipment(s, _fo(s, e, e.fulfillment_order_id), SS.DELIVERED))
        case m.ShipmentReturned():
            fo = _fo(s, e, e.fulfillment_order_id)
            return _put_fo_moving(
                s, e, _fo_shipment(s, fo, SS.RETURNED),
                [(line.line_id, line.quantity, Q.SHIPPED, Q.RETURNED)
                 for line in fo.shipped_lines])
        case _:
            raise TypeError(f"evolve does not know event type {type(e).__qualname__}")


def _fo_created(s: OrderState, e: m.FulfillmentOrderCreated) -> Changes:
    if s.fulfillment_order(e.fulfillment_order_id) is not None:
        _reject(s, e, f"fulfillment order {e.fulfillment_order_id} already exists")
    if s.progress in (L.CANCELED, L.CLOSED):
        _reject(s, e, f"the order is {s.progress.value}")
    lines = _moved_lines(s, e, [(line.line_id, line.quantity, Q.ORDERED, Q.ALLOCATED)
                                for line in e.lines])
    status = FS.SCHEDULED if e.fulfill_at is not None else FS.OPEN
    if s.open_holds:
        status = FS.ON_HOLD
    fo = FulfillmentOrder(fulfillment_order_id=e.fulfillment_order_id,
                          warehouse_id=e.warehouse_id, lines=e.lines, status=status,
                          fulfill_at=e.fulfill_at, backorder=e.backorder)
    if e.settles_shortages:
        return {"line_items": lines, "fulfillment_orders": (*s.fulfillment_orders, fo),
                "shortages": ()}
    return {"line_items": lines, "fulfillment_orders": (*s.fulfillment_orders, fo)}


def _shipped(s: OrderState, e: m.Shipped) -> Changes:
    fo = _fo(s, e, e.fulfillment_order_id)
    planned = {line.line_id: line.quantity for line in fo.lines}
    shipping = {line.line_id: line.quantity for line in e.lines} if e.lines else planned
    for line_id, n in shipping.items():
        if n > planned.get(line_id, 0):
            _reject(s, e, f"ships {n} of line {line_id}, fulfillment order has "
                          f"{planned.get(line_id, 0)}")
    complete = shipping == planned
    updated = _fo_status(s, fo, FS.CLOSED if complete else FS.INCOMPLETE)
    shipped_lines = tuple(m.LineQuantity(line_id=k, quantity=v) for k, v in shipping.items())
    updated = _fo_shipment(s, updated, SS.SHIPPED, shipped_lines=shipped_lines,
                           tracking_number=e.tracking_number or fo.tracking_number)
    src = Q.PICKED if fo.picked else Q.ALLOCATED
    moves: list[tuple[str, int, Q, Q]] = []
    for line_id, n in planned.items():
        sent = shipping.get(line_id, 0)
        moves.append((line_id, sent, src, Q.SHIPPED))
        moves.append((line_id, n - sent, src, Q.ORDERED))
    return _put_fo_moving(s, e, updated, moves)


def _hold_event(s: OrderState, e: m.HoldOpened | m.HoldHandedOff | m.HoldReleased) -> Changes:
    if isinstance(e, m.HoldOpened):
        if s.hold(e.hold_id) is not None:
            _reject(s, e, f"hold {e.hold_id} already exists")
        changes: Changes = {}
        if not s.open_holds:
            check_transition(s.order_id, "lifecycle", s.lifecycle, L.ON_HOLD)
            fos = tuple(_fo_status(s, fo, FS.ON_HOLD)
                        if fo.status in (FS.OPEN, FS.SCHEDULED) else fo
                        for fo in s.fulfillment_orders)
            changes = {"lifecycle": L.ON_HOLD, "held_lifecycle": s.lifecycle,
                       "fulfillment_orders": fos}
        opened = Hold(hold_id=e.hold_id, reason=e.reason, owner_team=e.owner_team,
                      opened_at=e.occurred_at, deadline=e.deadline, proposal=e.proposal,
                      options=e.options)
        changes["holds"] = (*s.holds, opened)
        return changes
    hold = s.hold(e.hold_id)
    if hold is None:
        _reject(s, e, f"unknown hold {e.hold_id}")
    if isinstance(e, m.HoldHandedOff):
        if hold.status is not HoldStatus.OPEN:
            _reject(s, e, f"hold {e.hold_id} is {hold.status.value}")
        if hold.owner_team != e.from_team:
            _reject(s, e, f"hold {e.hold_id} is owned by {hold.owner_team}, not {e.from_team}")
        handoff = Handoff(from_team=e.from_team, to_team=e.to_team, at=e.occurred_at,
                          by=e.by, note=e.note)
        hold = replace(hold, owner_team=e.to_team, handoffs=(*hold.handoffs, handoff))
        return {"holds": replace_by_id(s.holds, "hold_id", hold)}
    check_transition(s.order_id, f"hold[{e.hold_id}]", hold.status, HoldStatus.RELEASED)
    hold = replace(hold, status=HoldStatus.RELEASED, released_at=e.occurred_at,
                   released_by=e.released_by, resolution=e.resolution, decision=e.decision,
                   note=e.note)
    holds = replace_by_id(s.holds, "hold_id", hold)
    changes = {"holds": holds, **_decided(s, hold)}
    if s.held_lifecycle is None or any(h.status is HoldStatus.OPEN for h in holds):
        return changes
    check_transition(s.order_id, "lifecycle", L.ON_HOLD, s.held_lifecycle)
    fos = tuple(_fo_status(s, fo, FS.OPEN) if fo.status is FS.ON_HOLD else fo
                for fo in s.fulfillment_orders)
    changes.update(lifecycle=s.held_lifecycle, held_lifecycle=None, fulfillment_orders=fos)
    return changes


def _decided(s: OrderState, hold: Hold) -> dict[str, Any]:
    """What a hold released as its team decided settles: a person looked at
    the failed payment (capture may be tried again, whatever they decided: a
    cancel that cannot happen because the goods left must not leave the money
    uncollected); a person let an address or duplicate case go on; a person
    let a stuck order go on, which begins a redrive round of its sourcing."""
    decision = hold.decision
    if decision is None:
        return {}
    if hold.reason is HoldReason.AWAITING_PAYMENT:
        return {"capture_failures": 0}
    if decision is Decision.CANCEL:
        return {}
    if hold.reason is HoldReason.INCORRECT_ADDRESS:
        return {"address_usable": True}
    if hold.reason is HoldReason.DUPLICATE_ORDER:
        return {"duplicate_of": None}
    if hold.reason in (HoldReason.POLICY_EXCEPTION, HoldReason.OTHER):
        return {"sourcing": (*s.sourcing, SourcingStep(kind=SourcingKind.REDRIVE))}
    return {}


def _notified(s: OrderState, e: m.CustomerNotified) -> Changes:
    existed = True
    if e.kind in (NotificationKind.SHIPPED, NotificationKind.DELIVERED):
        fo = s.fulfillment_order(e.fulfillment_order_id) if e.fulfillment_order_id else None
        wanted = SHIPPED_STATES if e.kind is NotificationKind.SHIPPED else {SS.DELIVERED}
        existed = fo is not None and fo.shipment in wanted
    note = Notification(kind=e.kind, fulfillment_order_id=e.fulfillment_order_id,
                        at=e.occurred_at, shipment_existed=existed)
    return {"notifications": (*s.notifications, note)}


def _canceled(s: OrderState, e: m.OrderCanceled) -> Changes:
    before = s
    s = replace(s, **_set_lifecycle(s, L.CANCELED))
    for fo in s.fulfillment_orders:
        if fo.status in (FS.OPEN, FS.SCHEDULED, FS.ON_HOLD):
            s = replace(s, **_put_fo(s, _fo_status(s, fo, FS.CANCELED)))
            s = replace(s, **_unassign(s, e, fo))
    for line in s.line_items:
        s = replace(s, **_move_units(s, e, line.line_id, line.ordered, Q.ORDERED, Q.CANCELED))
    return {**changed_fields(before, s), "canceled_at_version": s.version + 1,
            "cancel_request": None}


def _return_event(s: OrderState, e: m.ReturnRequested | m.ReturnReceived) -> Changes:
    if isinstance(e, m.ReturnRequested):
        if s.return_case(e.return_id) is not None:
            _reject(s, e, f"return {e.return_id} already exists")
        changes = _set_lifecycle(s, L.RETURN_IN_PROGRESS)
        for line in e.lines:
            item = s.line(line.line_id)
            pending = sum(r_line.quantity for r in s.returns if not r.received
                          for r_line in r.lines if r_line.line_id == line.line_id)
            if item is None or item.shipped - pending < line.quantity:
                _reject(s, e, f"line {line.line_id} has not enough shipped units to return")
        changes["returns"] = (*s.returns, ReturnCase(return_id=e.return_id, lines=e.lines))
        return changes
    case_ = s.return_case(e.return_id)
    if case_ is None:
        _reject(s, e, f"unknown return {e.return_id}")
    if case_.received:
        _reject(s, e, f"return {e.return_id} already received")
    before = s
    for line in case_.lines:
        s = replace(s, **_move_units(s, e, line.line_id, line.quantity, Q.SHIPPED, Q.RETURNED))
    returns = replace_by_id(s.returns, "return_id", replace(case_, received=True))
    changes = {**changed_fields(before, s), "returns": returns}
    if all(r.received for r in returns):
        changes.update(_set_lifecycle(s, L.RETURNED))
    return changes


# -- derived dimensions ---------------------------------------------------------------


def derive_payment(s: OrderState) -> Payment:
    """The financial status the money records imply."""
    for r in s.unresolved_requests():  # UNKNOWN is one of the unresolved statuses
        if r.status is RequestStatus.UNKNOWN:
            return Payment.UNKNOWN
    captured, refunded = s.captured_amount, s.refunded_amount
    if refunded > 0:
        return Payment.REFUNDED if refunded >= captured else Payment.PARTIALLY_REFUNDED
    if captured > 0:
        return Payment.PAID if captured >= s.amount_due else Payment.PARTIALLY_PAID
    authorizations = s.authorizations
    if not authorizations:
        return Payment.FAILED if s.failed_authorizations else Payment.PENDING
    for a in authorizations:
        if a.status is AuthS.OPEN:
            return Payment.AUTHORIZED
    last = authorizations[-1].status
    return Payment.VOIDED if last is AuthS.VOIDED else Payment.EXPIRED


def _settled(s: OrderState) -> dict[str, Any]:
    """The derived dimensions re-derived (payment status from the money
    records, lifecycle progress from payment and the line items), as the
    field changes to make; each move is checked against its table."""
    changes: dict[str, Any] = {}
    payment = derive_payment(s)
    if payment is not s.payment:
        check_transition(s.order_id, "payment", s.payment, payment)
        changes["payment"] = payment
    start = progress = s.progress
    secured = s.payment_secured or s.ship_approved_by is not None
    if progress in (L.PLACED, L.AWAITING_PAYMENT) and secured:
        progress = _moved(s, progress, L.READY_FOR_FULFILLMENT)
    elif progress is L.PLACED and (s.payment_requests or s.authorizations):
        progress = _moved(s, progress, L.AWAITING_PAYMENT)
    elif progress is L.READY_FOR_FULFILLMENT and not secured and not any(
        fo.status in IN_FLIGHT or fo.shipment is not SS.PENDING for fo in s.fulfillment_orders
    ):
        progress = _moved(s, progress, L.AWAITING_PAYMENT)
    shipped = s.units_shipped
    if shipped and progress not in (L.RETURN_IN_PROGRESS, L.RETURNED, L.CLOSED):
        if shipped < s.units_active:
            progress = _moved(s, progress, L.PARTIALLY_FULFILLED)
        else:
            finished = all(fo.shipment in (SS.DELIVERED, SS.RETURNED)
                           for fo in s.fulfillment_orders if fo.shipment in SHIPPED_STATES)
            progress = _moved(s, progress, L.DELIVERED if finished else L.FULFILLED)
    if progress is not start:
        changes["held_lifecycle" if s.held_lifecycle is not None else "lifecycle"] = progress
    return changes
