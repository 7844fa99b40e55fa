"""The inbound channel: decisions for placements, interactions, identify, eligible campaigns, placements.

``POST /v1/decisions`` (scope ``decisions:read``, the SDK's public key) answers, in one call, what
to show in each placement of a page, for a customer or an anonymous visitor (``anon:<visitor>``).
It is answered by the worker that owns the customer's partition, from its local state (another
worker forwards the request once). Each item carries a signed token the SDK sends back with its
interactions, so an interaction is attributed to the campaign and placement that were shown.

Audit records (and, for control-group customers, the withheld impression that enters them in the
campaign's control arm) are produced without waiting for Kafka's acknowledgement: the answer's
latency is the decision's, not the log's. They are gathered for a few milliseconds and produced
together (``streams.best_effort``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiohttp import web

from api.definitions import save_definition
from api.errors import ApiError
from api.payloads import customer_id as check_customer_id
from engine.campaigns.audit import Decision, audit_record
from engine.campaigns.inbound import decide_inbound, eligible_campaigns
from engine.campaigns.placements import (
    PLACEMENT_KIND,
    Placement,
    check_placement_id,
    placement_from_body,
)
from engine.errors import ValidationError
from engine.events import CustomerUpdate, Envelope, Interaction
from engine.signing import ExpiredToken, InvalidSignature, Signer
from engine.visitors import IDENTIFIED_AS, anonymous_customer_id, check_visitor_id, is_anonymous
from schemas.codec import encode_envelope, encode_typed
from streams.best_effort import BestEffortSender
from streams.partitions import partition_for
from streams.producer import OutRecord

if TYPE_CHECKING:
    from api.server import Api

log = structlog.get_logger(__name__)

MAX_PLACEMENTS = 20
MAX_INTERACTIONS = 100
INTERACTION_PURPOSE = "interaction"
SDK_INTERACTION_KINDS = ("impression", "click", "dismiss", "conversion", "lead")
_UNKNOWN_PLACEMENT = placement_from_body("unknown", 0, {})


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError(f"send {what} as a JSON object")
    return body


def _customer_of(body: dict[str, Any], at: str = "") -> str:
    """The customer id, or ``anon:<visitor id>`` for a visitor not identified yet."""
    customer = body.get("customer_id")
    if customer is not None:
        return check_customer_id(customer, f"{at}customer_id")
    if body.get("visitor_id") is None:
        raise ValidationError(f"{at}customer_id: give a customer_id or a visitor_id", f"{at}customer_id")
    return anonymous_customer_id(check_visitor_id(body.get("visitor_id"), f"{at}visitor_id"))


class DecisionsApi:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.worker = api.worker
        self.signer = Signer(self.worker.settings.signing_secrets)
        self.audit = BestEffortSender(self.worker.producer.send_nowait)

    # --- decisions -------------------------------------------------------------------------------

    async def post_decisions(self, request: web.Request) -> web.StreamResponse:
        self.api.auth.require(request, "decisions:read")
        raw = await request.read()
        body = _object(self._parse(raw), "the decision request")
        customer = _customer_of(body)
        placement_ids = body.get("placements")
        if not isinstance(placement_ids, list) or not placement_ids or len(placement_ids) > MAX_PLACEMENTS:
            raise ValidationError(
                f"placements: expected a list of 1 to {MAX_PLACEMENTS} placement ids", "placements"
            )
        placements = [
            self._placement(check_placement_id(p, f"placements[{i}]")) for i, p in enumerate(placement_ids)
        ]
        page = body.get("page")
        if page is not None and (not isinstance(page, str) or len(page) > 2000):
            raise ValidationError("page: expected the page's path, at most 2000 characters", "page")
        partition = partition_for(customer, self.worker.settings.partitions)
        if partition not in self.worker.events_partitions():
            return await self.api._forward(request, partition, raw)
        ready, reason = self.worker.is_ready()
        if not ready:
            raise ApiError(503, "not_ready", f"the worker is not ready yet: {reason}")
        now_ms = self.worker.clock_ms()
        state = self.worker.processor.current_state(partition, customer)
        decision_key = hashlib.blake2b(
            b"%s\0%d\0%s" % (customer.encode(), now_ms, raw), digest_size=10
        ).hexdigest()
        decided = decide_inbound(
            state, customer, placements, self.worker.definitions.catalog, now_ms, cause_id=decision_key
        )
        answer: dict[str, Any] = {}
        for placement in placements:
            result = decided.answers[placement.placement_id]
            answer[placement.placement_id] = {
                "kind": placement.kind,
                "max_items": placement.max_items,
                "open_delay_ms": placement.open_delay_ms,
                "default": result.default,
                "default_content": dict(placement.default),
                "items": [
                    {
                        "campaign_id": item.campaign_id,
                        "variant": item.arm,
                        "token": self.signer.sign(
                            INTERACTION_PURPOSE,
                            [customer, item.campaign_id, placement.placement_id, item.arm],
                        ),
                        "content": dict(item.content),
                    }
                    for item in result.items
                ],
            }
        withheld = [
            self.api.envelopes.envelope(
                customer,
                Interaction(
                    kind="impression",
                    interaction_id=f"control:{decision_key}:{campaign_id}",
                    campaign_id=campaign_id,
                    placement_id=placement_id,
                    data={"control": "1"},
                ),
            )
            for placement_id, campaign_id in decided.enters_control
        ]
        self._record(customer, decided.decisions, withheld)
        body = {"decision_id": f"dec_{decision_key}", "customer_id": customer, "placements": answer}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _placement(self, placement_id: str) -> Placement:
        placement = self.worker.definitions.placements.get(placement_id)
        if placement is not None:
            return placement
        # A placeholder the page has but no definition: it keeps its own default content.
        return placement_from_body(placement_id, 0, {}) if placement_id != "unknown" else _UNKNOWN_PLACEMENT

    def _record(self, customer: str, decisions: Sequence[Decision], withheld: list[Envelope]) -> None:
        topics = self.worker.topics
        key = customer.encode("utf-8")
        records = [OutRecord(topics.events, key, encode_envelope(e)) for e in withheld]
        if decisions:  # one audit record for the request, as the processor writes one per event
            records.append(OutRecord(topics.audit, key, encode_typed("Decision", audit_record(decisions))))
        # Best effort: the answer does not wait for Kafka (the producer retries; a crash may lose
        # the last decisions' audit, never a customer's state).
        self.audit.send(records)

    @staticmethod
    def _parse(raw: bytes) -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None

    # --- interactions and identify --------------------------------------------------------------

    async def post_interactions(self, request: web.Request) -> web.Response:
        # The SDK sends beacons as text/plain JSON (no CORS preflight), with the key in the body.
        if request.content_type not in ("application/json", "text/plain", ""):
            raise ApiError(
                415, "unsupported_media_type", "send the body as application/json (or text/plain JSON)"
            )
        body = _object(self._parse(await request.read()), "the interactions")
        key = body.get("key")
        self.api.auth.require(request, "interactions:write", in_body=key if isinstance(key, str) else None)
        items = body.get("interactions")
        if not isinstance(items, list) or not items or len(items) > MAX_INTERACTIONS:
            raise ValidationError(f"interactions: expected a list of 1 to {MAX_INTERACTIONS}", "interactions")
        envelopes = [
            self._interaction(_object(item, f"interactions[{i}]"), f"interactions[{i}].")
            for i, item in enumerate(items)
        ]
        await self.api._append(envelopes)
        return web.json_response({"accepted": len(envelopes)}, status=202)

    def _interaction(self, item: dict[str, Any], at: str) -> Envelope:
        customer = _customer_of(item, at)
        kind = item.get("kind")
        if kind not in SDK_INTERACTION_KINDS:
            raise ValidationError(
                f"{at}kind: expected one of {', '.join(SDK_INTERACTION_KINDS)}, got {kind!r}", f"{at}kind"
            )
        interaction_id = item.get("interaction_id")
        if not isinstance(interaction_id, str) or not 8 <= len(interaction_id) <= 128:
            raise ValidationError(
                f"{at}interaction_id: expected a unique id of 8 to 128 characters", f"{at}interaction_id"
            )
        campaign_id, placement_id, data = item.get("campaign_id"), item.get("placement_id"), {}
        token = item.get("token")
        if token is not None:
            try:
                fields = self.signer.verify(str(token), INTERACTION_PURPOSE, now_ms=self.worker.clock_ms())
            except (InvalidSignature, ExpiredToken):
                raise ApiError(
                    400, "invalid_token", f"{at}token: not a token this deployment issued"
                ) from None
            shown_to, campaign_id, placement_id, arm = fields
            if shown_to != customer and not (is_anonymous(str(shown_to)) and not is_anonymous(customer)):
                raise ApiError(400, "invalid_token", f"{at}token: issued for another customer")
            data = {"arm": str(arm)}
        for name, value in (("campaign_id", campaign_id), ("placement_id", placement_id)):
            if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 128):
                raise ValidationError(f"{at}{name}: expected a text of 1 to 128 characters", f"{at}{name}")
        payload = Interaction(
            kind=kind,
            interaction_id=interaction_id,
            campaign_id=campaign_id,
            placement_id=placement_id,
            channel="web",
            data=data,
        )
        return self.api.envelopes.envelope(customer, payload, event_id=f"int:{interaction_id}")

    async def post_identify(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "interactions:write")
        body = _object(self._parse(await request.read()), "the visitor and the customer")
        visitor = check_visitor_id(body.get("visitor_id"))
        customer = check_customer_id(body.get("customer_id"))
        if is_anonymous(customer):
            raise ValidationError(
                "customer_id: identify links a visitor to a known customer id", "customer_id"
            )
        anonymous = anonymous_customer_id(visitor)
        link = self.api.envelopes.envelope(anonymous, CustomerUpdate(set={IDENTIFIED_AS: customer}))
        await self.api._append([link])
        return web.json_response({"accepted": 1, "visitor": anonymous, "customer_id": customer}, status=202)

    # --- eligible campaigns ----------------------------------------------------------------------

    async def customer_campaigns(self, request: web.Request) -> web.StreamResponse:
        self.api.auth.require(request, "customers:read")
        customer = check_customer_id(request.match_info["customer_id"])
        partition = partition_for(customer, self.worker.settings.partitions)
        if partition not in self.worker.events_partitions():
            return await self.api._forward(request, partition)
        now_ms = self.worker.clock_ms()
        state = self.worker.processor.current_state(partition, customer)
        category, group = request.query.get("category"), request.query.get("group")
        campaigns = []
        for campaign, refusal in eligible_campaigns(state, self.worker.definitions.catalog, now_ms):
            if refusal is not None:
                continue
            if (category and category not in campaign.categories) or (group and group not in campaign.groups):
                continue
            run = state.campaigns.get(campaign.campaign_id) if state is not None else None
            campaigns.append(
                {
                    "id": campaign.campaign_id,
                    "name": campaign.name,
                    "priority": campaign.priority,
                    "categories": list(campaign.categories),
                    "groups": list(campaign.groups),
                    "placements": sorted(campaign.inbound),
                    "running": bool(run is not None and run.active),
                    "arm": run.arm if run is not None else None,
                }
            )
        return web.json_response({"customer_id": customer, "campaigns": campaigns})

    # --- placements (admin) --------------------------------------------------------------------

    async def list_placements(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        placements = self.worker.definitions.placements
        return web.json_response({"placements": [placements[p].as_json() for p in sorted(placements)]})

    async def get_placement(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        placement_id = check_placement_id(request.match_info["placement_id"], "placement_id")
        placement = self.worker.definitions.placements.get(placement_id)
        if placement is None:
            raise ApiError(404, "placement_not_found", f"no placement with id {placement_id!r}")
        return web.json_response(placement.as_json())

    async def put_placement(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        placement_id = check_placement_id(request.match_info["placement_id"], "placement_id")
        body = _object(await self.api._json(request), "the placement")
        latest = self.worker.definitions.latest(PLACEMENT_KIND, placement_id)
        version = (latest.version if latest is not None else 0) + 1
        placement = placement_from_body(placement_id, version, body)
        await self._save(placement_id, version, dict(placement.body), deleted=False)
        created = latest is None or latest.deleted
        return web.json_response(placement.as_json(), status=201 if created else 200)

    async def delete_placement(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        placement_id = check_placement_id(request.match_info["placement_id"], "placement_id")
        latest = self.worker.definitions.latest(PLACEMENT_KIND, placement_id)
        if latest is None or latest.deleted:
            raise ApiError(404, "placement_not_found", f"no placement with id {placement_id!r}")
        await self._save(placement_id, latest.version + 1, orjson.loads(latest.body), deleted=True)
        return web.json_response({"id": placement_id, "version": latest.version + 1, "deleted": True})

    async def _save(self, placement_id: str, version: int, body: dict[str, Any], *, deleted: bool) -> None:
        def compiled() -> int | None:
            current = self.worker.definitions.placements.get(placement_id)
            return None if current is None else current.version

        await save_definition(
            self.worker,
            PLACEMENT_KIND,
            placement_id,
            version,
            body,
            deleted=deleted,
            compiled_version=compiled,
        )


def install_decisions(router: web.UrlDispatcher, api: Api) -> DecisionsApi:
    decisions = DecisionsApi(api)
    router.add_post("/v1/decisions", decisions.post_decisions)
    router.add_post("/v1/interactions", decisions.post_interactions)
    router.add_post("/v1/identify", decisions.post_identify)
    router.add_get("/v1/customers/{customer_id}/campaigns", decisions.customer_campaigns)
    router.add_get("/v1/placements", decisions.list_placements)
    router.add_get("/v1/placements/{placement_id}", decisions.get_placement)
    router.add_put("/v1/placements/{placement_id}", decisions.put_placement)
    router.add_delete("/v1/placements/{placement_id}", decisions.delete_placement)
    return decisions
