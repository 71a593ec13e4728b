"""The order domain on the wire: every message that crosses a process or is persisted.

Each message type has a stable wire name and a version, written out here
once: the wire name is never derived from the class name, so renaming a
class does not change what peers and stored rows say. Changing a message's
fields means a new version (and, to keep reading the old one, an
:class:`~orderloom.runtime.Upgrader`); ``tests/unit/test_wire.py`` checks that
every message class is registered here or deliberately left out, and
``docs/wire-schema.json`` that the published schema is this table's.

Not here: messages that never leave their actor or process (a simulated
world actor's self-messages, the kernel's ``ChildFailed``, ``OrderUpdated``
from an order's actor to automation in the same process).
"""

from __future__ import annotations

from typing import Any

from orderloom.runtime import FieldRules, KernelReply, TimerDue, Upgrader, WireCodec, WireType

from ..order import _messages as m
from ..order._reaction import PolicyTimer
from . import _automation, _desk, _order_actor, _order_record
from . import _protocol as p

__all__ = ["WIRE_RULES", "wire_codec", "wire_types"]

# (wire name, version, class). Commands are imperative, events past tense.
_TABLE: tuple[tuple[str, int, type], ...] = (
    # -- order commands (from intake, automation, people) ------------------------------
    ("order.place", 1, m.PlaceOrder),
    ("order.authorize_payment", 1, m.AuthorizePayment),
    ("order.capture_payment", 1, m.CapturePayment),
    ("order.refund_payment", 1, m.RefundPayment),
    ("order.void_authorization", 1, m.VoidAuthorization),
    ("order.cancel", 1, m.CancelOrder),
    ("order.cancel_line_items", 1, m.CancelLineItems),
    ("order.assign_warehouse", 1, m.AssignWarehouse),
    ("order.submit_fulfillment", 1, m.SubmitFulfillment),
    ("order.cancel_fulfillment", 1, m.CancelFulfillment),
    ("order.create_label", 1, m.CreateLabel),
    ("order.ship_fulfillment", 1, m.ShipFulfillment),
    ("order.approve_shipment", 1, m.ApproveShipment),
    ("order.open_hold", 1, m.OpenHold),
    ("order.hand_off_hold", 1, m.HandOffHold),
    ("order.release_hold", 2, m.ReleaseHold),
    ("order.record_risk_assessment", 1, m.RecordRiskAssessment),
    ("order.notify_customer", 1, m.NotifyCustomer),
    ("order.request_return", 1, m.RequestReturn),
    ("order.close", 1, m.CloseOrder),
    ("order.request_cancellation", 2, m.RequestCancellation),
    ("order.request_risk_replay", 1, m.RequestRiskReplay),
    # -- order events (journaled; replies from the gateway and warehouses) -------------
    ("order.placed", 1, m.OrderPlaced),
    ("order.payment_authorization_requested", 1, m.PaymentAuthorizationRequested),
    ("order.payment_authorized", 1, m.PaymentAuthorized),
    ("order.payment_capture_requested", 1, m.PaymentCaptureRequested),
    ("order.payment_captured", 1, m.PaymentCaptured),
    ("order.payment_refund_requested", 1, m.PaymentRefundRequested),
    ("order.payment_refunded", 1, m.PaymentRefunded),
    ("order.payment_void_requested", 1, m.PaymentVoidRequested),
    ("order.payment_voided", 1, m.PaymentVoided),
    ("order.payment_failed", 1, m.PaymentFailed),
    ("order.payment_outcome_unknown", 1, m.PaymentOutcomeUnknown),
    ("order.authorization_expired", 1, m.AuthorizationExpired),
    ("order.risk_assessed", 1, m.RiskAssessed),
    ("order.fulfillment_order_created", 1, m.FulfillmentOrderCreated),
    ("order.fulfillment_submitted", 1, m.FulfillmentSubmitted),
    ("order.fulfillment_accepted", 1, m.FulfillmentAccepted),
    ("order.fulfillment_rejected", 1, m.FulfillmentRejected),
    ("order.fulfillment_canceled", 1, m.FulfillmentCanceled),
    ("order.items_picked", 1, m.ItemsPicked),
    ("order.label_created", 1, m.LabelCreated),
    ("order.shipped", 1, m.Shipped),
    ("order.shipment_delayed", 1, m.ShipmentDelayed),
    ("order.delivered", 1, m.Delivered),
    ("order.shipment_returned", 1, m.ShipmentReturned),
    ("order.line_items_canceled", 1, m.LineItemsCanceled),
    ("order.shipment_approved", 1, m.ShipmentApproved),
    ("order.hold_opened", 1, m.HoldOpened),
    ("order.hold_handed_off", 1, m.HoldHandedOff),
    ("order.hold_released", 2, m.HoldReleased),
    ("order.customer_notified", 1, m.CustomerNotified),
    ("order.canceled", 1, m.OrderCanceled),
    ("order.return_requested", 1, m.ReturnRequested),
    ("order.return_received", 1, m.ReturnReceived),
    ("order.closed", 1, m.OrderClosed),
    ("order.screened", 1, m.OrderScreened),
    ("order.address_verified", 1, m.AddressVerified),
    ("order.shortage_recorded", 1, m.ShortageRecorded),
    ("order.cancellation_requested", 2, m.CancellationRequested),
    ("order.risk_replay_requested", 1, m.RiskReplayRequested),
    # -- the payment gateway -----------------------------------------------------------
    ("gateway.authorize", 1, p.GatewayAuthorize),
    ("gateway.capture", 1, p.GatewayCapture),
    ("gateway.void", 1, p.GatewayVoid),
    ("gateway.refund", 1, p.GatewayRefund),
    ("gateway.query", 1, p.GatewayQuery),
    # -- warehouses ----------------------------------------------------------------------
    ("warehouse.submit", 1, p.WarehouseSubmit),
    ("warehouse.cancel", 1, p.WarehouseCancel),
    ("warehouse.stock_shortage", 1, p.StockShortage),
    ("warehouse.stock_levels", 1, p.StockLevels),
    # -- the address service, customers, support teams, downstream systems ---------------
    ("address.check", 1, p.CheckAddress),
    ("address.checked", 1, p.AddressChecked),
    ("customer.cancel", 1, p.CustomerCancel),
    ("case.assigned", 1, p.CaseAssigned),
    ("case.decision", 1, p.CaseDecision),
    ("case.withdrawn", 1, p.CaseWithdrawn),
    ("downstream.sync_order", 1, p.SyncOrder),
    ("coordinator.order_retired", 1, p.OrderRetired),
    ("coordinator.screened", 1, p.Screened),
    ("watchdog.stuck_report", 1, p.StuckReport),
    ("watchdog.escalate", 1, p.Escalate),
    # -- the kernel: the answer to an ask that crossed a transport ----------------------
    ("kernel.reply", 1, KernelReply),
    # -- durable timers (stored until they fire) -----------------------------------------
    ("timer.due", 1, TimerDue),
    ("timer.policy", 1, PolicyTimer),
    ("timer.request_timed_out", 1, p.RequestTimedOut),
    ("timer.stuck_check", 1, p.StuckCheck),
    ("timer.resequence", 1, _order_actor._Resequence),
    ("timer.sync_flush", 1, _order_actor._SyncFlush),
    ("timer.retire", 1, _order_actor._Retire),
    # -- journal notes (the own entries of order actors, automation, review desks) -----
    ("journal.event_held", 1, _order_record.EventHeld),
    ("journal.held_taken", 1, _order_record.HeldTaken),
    ("journal.copy_counted", 1, _order_record.CopyCounted),
    ("journal.stage_entered", 1, _order_record.StageEntered),
    ("journal.finish_reported", 1, _order_record.FinishReported),
    ("journal.wrong_action_reported", 1, _order_record.WrongActionReported),
    ("journal.sync_due", 1, _order_record.SyncDue),
    ("journal.sync_flushed", 1, _order_record.SyncFlushed),
    ("journal.order_key_recorded", 1, _automation.OrderKeyRecorded),
    ("journal.desk_case_received", 1, _desk.DeskCaseReceived),
    ("journal.desk_case_noted", 1, _desk.DeskCaseNoted),
    ("journal.desk_case_decided", 1, _desk.DeskCaseDecided),
    ("journal.desk_case_withdrawn", 1, _desk.DeskCaseWithdrawn),
)

WIRE_RULES = FieldRules(
    # Order ids go in addresses, so they are held to the strict id format.
    order_ids=frozenset({"order_id", "duplicate_of"}),
    ids=frozenset({"event_id", "command_id", "request_id", "authorization_id", "capture_id",
                   "refund_id", "fulfillment_order_id", "fulfillment_order_ids",
                   "warehouse_id", "hold_id", "case_id", "return_id", "line_id",
                   "customer_id", "timer_id"}),
    money=frozenset({"amount", "unit_price", "captured", "refunded"}),
    sequences=frozenset({"source_seq"}),
    timestamps=frozenset({"occurred_at", "issued_at"}),
)
"""Which body fields hold order ids, other ids, money, sequence numbers and times."""


def _no_note(body: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2 of a release or a cancellation request: v2 carries the
    decider's ``note`` (why); a v1 sender gave none."""
    return {**body, "note": ""}


_UPGRADERS = tuple(
    Upgrader(name=name, from_version=1, upgrade=_no_note)
    for name in ("order.release_hold", "order.request_cancellation",
                 "order.hold_released", "order.cancellation_requested"))


def wire_types() -> tuple[WireType, ...]:
    """The registrations of every order-domain message that goes on the wire."""
    return tuple(WireType(name=name, version=v, cls=cls) for name, v, cls in _TABLE)


def wire_codec() -> WireCodec:
    """A :class:`~orderloom.runtime.WireCodec` for :func:`wire_types` and :data:`WIRE_RULES`."""
    return WireCodec(wire_types(), rules=WIRE_RULES, upgraders=_UPGRADERS)
