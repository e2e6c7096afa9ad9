"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from carepath.engine.application import CarePath
from carepath.engine.scheduler import TimerScheduler

from .access_log import install_path_only_access_log
from .bootstrap import build_engine, deploy_directory
from .docs_pages import DocsContentPolicy
from .engine_rest import deployments as engine_rest_deployments
from .engine_rest.wire import camunda_or, install_camunda_error_handlers
from .errors import install_error_handlers
from .fhir import inbound as fhir_inbound
from .fhir import referral_updates as fhir_referral_updates
from .fhir import routes as fhir_routes
from .fhir.wire import fhir_or, install_fhir_error_handlers
from .guards import BodyLimit, ErrorResponses, QueryChecks
from .metrics import install_metrics
from .oidc import OidcVerifier
from .oidc_signin import OidcClient, OidcSignIn
from .params import no_nul_in_path
from .routes import (
    audit,
    break_glass,
    camunda_external_tasks,
    external_tasks,
    health,
    inbox,
    instances,
    messages,
    notifications,
    partners,
    pathways,
    patients,
    referrals,
    reports,
    resources,
    tasks,
    users,
)
from .settings import Settings
from .web import about, admin, message_inbox, provider_sign_in, resource_search, session, team, worklist_routes
from .web import audit as web_audit
from .web import break_glass as web_break_glass
from .web import episodes as web_episodes
from .web import partners as web_partners
from .web import pathway_migrations as web_pathway_migrations
from .web import pathways as web_pathways
from .web import patients as web_patients
from .web import routes as web_routes
from .web import start as web_start
from .web import tasks as web_tasks
from .web.assets import mount_static
from .web.errors import error_response, install_web_error_handlers
from .web.headers import WebPageHeaders

log = logging.getLogger("carepath")


def _oidc(settings: Settings) -> OidcVerifier | None:
    if not settings.oidc_issuer or not settings.oidc_audience:
        return None
    return OidcVerifier(settings.oidc_issuer, settings.oidc_audience, jwks=settings.oidc_jwks,
                        jwks_url=settings.oidc_jwks_url, username_claim=settings.oidc_username_claim,
                        roles_claim=settings.oidc_roles_claim, groups_claim=settings.oidc_groups_claim)


def _oidc_sign_in(settings: Settings) -> OidcSignIn | None:
    if not settings.oidc_web_sign_in() or settings.oidc_issuer is None or settings.oidc_client_id is None:
        return None
    client = OidcClient(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret,
                        settings.oidc_scopes, settings.oidc_timeout_seconds)
    return OidcSignIn(client, {"jwks": settings.oidc_jwks, "jwks_url": settings.oidc_jwks_url,
                               "username_claim": settings.oidc_username_claim,
                               "roles_claim": settings.oidc_roles_claim, "groups_claim": settings.oidc_groups_claim})


def create_app(settings: Settings | None = None, engine: CarePath | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = engine or build_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler = None
        # The pool sync endpoints run in, for this process's event loop (anyio's default: 40 threads).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_thread_count()
        if settings.deploy_shipped_pathways:
            for line in deploy_directory(engine, settings.pathways_path()):
                log.info("pathway %s", line)
        if settings.scheduler_enabled:
            scheduler = TimerScheduler(engine, settings.sweep_seconds)
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown()

    # /docs and /redoc with their scripts, styles and icon served from the package (fastapi-offline), not
    # from CDNs, so that they work on a hospital network without internet (api/docs_pages.py); no
    # validator badge either.
    app = FastAPIOffline(title="CarePath", version="0.1.0", lifespan=lifespan,
                         dependencies=[Depends(no_nul_in_path)], swagger_ui_parameters={"validatorUrl": None},
                         description="Care pathway orchestrator: BPMN pathways on SpiffWorkflow.")
    app.state.engine = engine
    app.state.settings = settings
    app.state.oidc = _oidc(settings)
    app.state.oidc_sign_in = _oidc_sign_in(settings)
    install_error_handlers(app)
    install_web_error_handlers(app)  # the web app's paths answer pages (api/web/errors.py)
    install_fhir_error_handlers(app)  # /fhir answers OperationOutcomes (api/fhir/wire.py)
    install_camunda_error_handlers(app)  # /engine-rest answers Camunda's {"type", "message"} (api/engine_rest/wire.py)
    install_path_only_access_log()
    # Added innermost first: QueryChecks and BodyLimit raise to ErrorResponses, which the metrics count.
    app.add_middleware(QueryChecks)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, upload_bytes=settings.max_upload_bytes,
                       upload_paths=(pathways.router.prefix, web_pathways.UPLOAD, resources.IMPORT,
                                     engine_rest_deployments.CREATE))
    app.add_middleware(ErrorResponses, respond=camunda_or(fhir_or(error_response)))
    app.add_middleware(DocsContentPolicy)
    app.add_middleware(WebPageHeaders)
    install_metrics(app, engine)
    for module in (health, pathways, instances, tasks, messages, notifications, users, reports, audit,
                   break_glass, fhir_routes, fhir_inbound, fhir_referral_updates, patients, inbox, resources,
                   partners, external_tasks, camunda_external_tasks, referrals):
        app.include_router(module.router)
    # The web app's pages (api/web/): the team inbox hangs off `team`'s router (web/inbox.py).
    for page_module in (web_routes, worklist_routes, about, web_tasks, web_start, team, session, web_break_glass,
                        admin, provider_sign_in, web_pathways, web_pathway_migrations, web_episodes, web_audit,
                        message_inbox, web_partners, web_patients, resource_search):
        app.include_router(page_module.router)
    app.include_router(engine_rest_deployments.router)  # Camunda 7's deploy and start (api/engine_rest/)
    mount_static(app)
    return app
