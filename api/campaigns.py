"""``/v1/campaigns``: save, read, list, pause, resume and delete campaigns, and their funnels.

Scope ``admin``. A campaign is a ``Definition`` (``campaign:<id>``); each change (including a pause
or a resume) is a new immutable version, and runs already under way go on with the newest version
of their campaign. A body that does not read as a campaign is refused here with the path of the
wrong field, so workers never meet one.

The funnel of a campaign is counted per partition by the workers that own the partitions (see
``streams.processor``); this worker sums its own and asks every other worker for theirs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import yaml
from aiohttp import web

from api.definitions import save_definition
from api.errors import ApiError
from engine.campaigns.definition import CAMPAIGN_KIND, campaign_from_body, check_campaign_id
from engine.campaigns.model import Campaign
from engine.campaigns.runs import FUNNEL_STAGES
from engine.errors import ValidationError
from streams.customer_store import CUSTOMERS_TABLE

if TYPE_CHECKING:
    from api.server import Api

LOCAL_FUNNEL_HEADER = "X-Refract-Forwarded"
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


def _iso(ms: int | None) -> str | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.campaign_id,
        "version": campaign.version,
        "name": campaign.name,
        "status": campaign.status,
        "priority": campaign.priority,
        "categories": list(campaign.categories),
        "groups": list(campaign.groups),
        "timezone": campaign.timezone,
        "starts_at": _iso(campaign.starts_at_ms),
        "ends_at": _iso(campaign.ends_at_ms),
        "segments": list(campaign.segments),
        "triggers": [trigger.key for trigger in campaign.triggers],
        "updated_at_ms": campaign.updated_at_ms,
        "definition": dict(campaign.body),
    }


def funnel_summary(campaign_id: str, arms: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Counts per arm and stage, conversion rates, and the uplift of treatment over control."""
    total: dict[str, int] = {stage: 0 for stage in FUNNEL_STAGES}
    for stages in arms.values():
        for stage, count in stages.items():
            total[stage] = total.get(stage, 0) + count

    def rate(stages: dict[str, int]) -> float | None:
        entered = stages.get("entered", 0)
        return stages.get("converted", 0) / entered if entered else None

    treatment: dict[str, int] = {}
    for arm, stages in arms.items():
        if arm != "control":
            for stage, count in stages.items():
                treatment[stage] = treatment.get(stage, 0) + count
    control_rate = rate(arms.get("control", {}))
    treatment_rate = rate(treatment)
    uplift = None
    if control_rate is not None and treatment_rate is not None:
        uplift = {
            "treatment_conversion_rate": treatment_rate,
            "control_conversion_rate": control_rate,
            "absolute": treatment_rate - control_rate,
            "relative": (treatment_rate / control_rate - 1) if control_rate else None,
        }
    return {
        "campaign_id": campaign_id,
        "stages": list(FUNNEL_STAGES),
        "arms": {
            arm: {stage: stages.get(stage, 0) for stage in FUNNEL_STAGES}
            for arm, stages in sorted(arms.items())
        },
        "total": total,
        "conversion_rate": {arm: rate(stages) for arm, stages in sorted(arms.items())},
        "uplift": uplift,
    }


class CampaignsApi:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.worker = api.worker

    def _campaign_id(self, request: web.Request) -> str:
        return check_campaign_id(request.match_info["campaign_id"], "campaign_id")

    def _current(self, campaign_id: str) -> Campaign:
        campaign = self.worker.definitions.campaigns.get(campaign_id)
        if campaign is None:
            raise ApiError(404, "campaign_not_found", f"no campaign with id {campaign_id!r}")
        return campaign

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type in _YAML_TYPES:
            raw = await request.read()
            try:
                body = yaml.safe_load(raw.decode("utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise ApiError(400, "invalid_yaml", f"the body is not valid YAML: {exc}") from None
        else:
            body = await self.api._json(request)
        if not isinstance(body, dict):
            raise ValidationError("send the campaign as a JSON (or YAML) object")
        return body

    async def list_campaigns(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        category = request.query.get("category")
        group = request.query.get("group")
        status = request.query.get("status")
        campaigns = [
            campaign_json(c)
            for _, c in sorted(self.worker.definitions.campaigns.items())
            if (category is None or category in c.categories)
            and (group is None or group in c.groups)
            and (status is None or c.status == status)
        ]
        return web.json_response({"campaigns": campaigns})

    async def get_campaign(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        return web.json_response(campaign_json(self._current(self._campaign_id(request))))

    async def put_campaign(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        campaign_id = self._campaign_id(request)
        body = await self._body(request)
        if body.get("kind", CAMPAIGN_KIND) != CAMPAIGN_KIND:
            raise ValidationError(f"kind: this endpoint saves campaigns, not {body['kind']!r}", "kind")
        body = {k: v for k, v in body.items() if k not in ("kind", "id")} | (
            {"id": body["id"]} if "id" in body else {}
        )
        latest = self.worker.definitions.latest(CAMPAIGN_KIND, campaign_id)
        version = (latest.version if latest is not None else 0) + 1
        campaign_from_body(campaign_id, version, body)  # refuses a wrong body, with its path
        saved_body = orjson.loads(orjson.dumps(body, default=str))  # YAML dates become text
        saved_body.pop("id", None)
        campaign = campaign_from_body(campaign_id, version, saved_body)
        await self._save(campaign_id, version, saved_body, deleted=False)
        current = self.worker.definitions.campaigns.get(campaign_id)
        answer = campaign_json(current if current is not None and current.version == version else campaign)
        created = latest is None or latest.deleted
        return web.json_response(answer, status=201 if created else 200)

    async def _set_status(self, request: web.Request, status: str) -> web.Response:
        self.api.auth.require(request, "admin")
        campaign = self._current(self._campaign_id(request))
        if campaign.status == status:
            return web.json_response(campaign_json(campaign))
        body = {**campaign.body, "status": status}
        version = campaign.version + 1
        updated = campaign_from_body(campaign.campaign_id, version, body)
        await self._save(campaign.campaign_id, version, body, deleted=False)
        return web.json_response(
            campaign_json(self.worker.definitions.campaigns.get(campaign.campaign_id, updated))
        )

    async def pause(self, request: web.Request) -> web.Response:
        return await self._set_status(request, "paused")

    async def resume(self, request: web.Request) -> web.Response:
        return await self._set_status(request, "active")

    async def delete_campaign(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        campaign_id = self._campaign_id(request)
        latest = self.worker.definitions.latest(CAMPAIGN_KIND, campaign_id)
        if latest is None or latest.deleted:
            raise ApiError(404, "campaign_not_found", f"no campaign with id {campaign_id!r}")
        version = latest.version + 1
        await self._save(campaign_id, version, orjson.loads(latest.body), deleted=True)
        return web.json_response({"id": campaign_id, "version": version, "deleted": True})

    async def _save(self, campaign_id: str, version: int, body: dict[str, Any], *, deleted: bool) -> None:
        def compiled() -> int | None:
            current = self.worker.definitions.campaigns.get(campaign_id)
            return None if current is None else current.version

        await save_definition(
            self.worker, CAMPAIGN_KIND, campaign_id, version, body, deleted=deleted, compiled_version=compiled
        )

    # --- funnels -------------------------------------------------------------------------------

    def _local_counts(self, campaign_id: str) -> tuple[dict[str, dict[str, int]], list[int]]:
        arms: dict[str, dict[str, int]] = {}
        partitions = sorted(self.worker.events_partitions())
        for partition in partitions:
            for arm, stages in self.worker.processor.funnel_counts(partition).get(campaign_id, {}).items():
                into = arms.setdefault(arm, {})
                for stage, count in stages.items():
                    into[stage] = into.get(stage, 0) + count
        return arms, partitions

    async def get_funnel(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        campaign_id = self._campaign_id(request)
        arms, partitions = self._local_counts(campaign_id)
        if request.query.get("scope") == "local":
            return web.json_response({"arms": arms, "partitions": partitions})
        counted = set(partitions)
        for _, answer in await self._ask_others(request, campaign_id):
            if answer is None:
                continue
            counted.update(answer["partitions"])
            for arm, stages in answer["arms"].items():
                into = arms.setdefault(arm, {})
                for stage, count in stages.items():
                    into[stage] = into.get(stage, 0) + count
        if campaign_id not in self.worker.definitions.campaigns and not arms:
            raise ApiError(404, "campaign_not_found", f"no campaign with id {campaign_id!r}")
        summary = funnel_summary(campaign_id, arms)
        summary["partitions"] = {"counted": len(counted), "total": self.worker.settings.partitions}
        return web.json_response(summary)

    async def _ask_others(self, request: web.Request, campaign_id: str) -> list[tuple[str, Any]]:
        try:
            hosts = self.worker.app.router.table_metadata(CUSTOMERS_TABLE)
        except KeyError:
            return []
        own = self.worker.settings.web_url.rstrip("/")
        others = [str(url).rstrip("/") for url in hosts if str(url).rstrip("/") != own]
        if not others:
            return []
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-api-key")}
        headers[LOCAL_FUNNEL_HEADER] = "1"
        timeout = aiohttp.ClientTimeout(total=5)

        async def ask(session: aiohttp.ClientSession, url: str) -> tuple[str, Any]:
            try:
                async with session.get(
                    f"{url}/v1/campaigns/{campaign_id}/funnel", params={"scope": "local"}, headers=headers
                ) as answer:
                    return url, (await answer.json() if answer.status == 200 else None)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return url, None

        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(await asyncio.gather(*(ask(session, url) for url in others)))


def install_campaigns(router: web.UrlDispatcher, api: Api) -> CampaignsApi:
    campaigns = CampaignsApi(api)
    router.add_get("/v1/campaigns", campaigns.list_campaigns)
    router.add_get("/v1/campaigns/{campaign_id}", campaigns.get_campaign)
    router.add_put("/v1/campaigns/{campaign_id}", campaigns.put_campaign)
    router.add_delete("/v1/campaigns/{campaign_id}", campaigns.delete_campaign)
    router.add_post("/v1/campaigns/{campaign_id}/pause", campaigns.pause)
    router.add_post("/v1/campaigns/{campaign_id}/resume", campaigns.resume)
    router.add_get("/v1/campaigns/{campaign_id}/funnel", campaigns.get_funnel)
    return campaigns
