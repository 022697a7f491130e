"""The web admin console: server-rendered pages on the HTTPS port, mounted at ``/``.

:func:`create_console` builds the application; the HTTPS app mounts it
after ``/healthz``, ``/xmpp-websocket`` and ``/api/v1``, so every other
path is the console's (unknown ones get its friendly 404 page). Pages:
sign-in and out, forgotten password and reset links (:mod:`.signin`), the
dashboard, one's own password and the console users (:mod:`.pages`); the
organisation directory's pages and its public registration and PIN-reset
pages (:mod:`.directory`). How sessions, CSRF tokens and roles work: :mod:`.auth`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from carewire.config import Config, parse_duration
from carewire.security.console_auth import ConsoleConfig
from carewire.web.console import (
    adapters,
    assignments,
    certificates,
    data,
    federation,
    logs,
    pages,
    rules,
    signin,
    system,
)
from carewire.web.console import directory as directory_pages
from carewire.web.console.render import EXCEPTION_HANDLERS, STATIC, SecurityHeaders
from carewire.web.console.services import ConsoleServices

__all__ = ["ROUTES", "ConsoleConfig", "ConsoleServices", "console_config", "create_console"]


#: The console's routes, in matching order.
ROUTES: tuple[BaseRoute, ...] = (
    Route("/", pages.dashboard, methods=["GET"]),
    Route("/dashboard/status", system.status_panel, methods=["GET"]),
    Route("/signin", signin.show_signin, methods=["GET"]),
    Route("/signin", signin.do_signin, methods=["POST"]),
    Route("/signout", signin.show_signout, methods=["GET"]),
    Route("/signout", signin.do_signout, methods=["POST"]),
    Route("/forgot", signin.show_forgot, methods=["GET"]),
    Route("/forgot", signin.do_forgot, methods=["POST"]),
    Route("/reset/{token}", signin.show_reset, methods=["GET"]),
    Route("/reset/{token}", signin.do_reset, methods=["POST"]),
    Route("/account/password", pages.show_password, methods=["GET"]),
    Route("/account/password", pages.change_password, methods=["POST"]),
    Route("/users", pages.users, methods=["GET"]),
    Route("/xmpp", adapters.xmpp_settings, methods=["GET"]),
    Route("/adapters", adapters.list_adapters, methods=["GET"]),
    Route("/adapters/new", adapters.new_adapter, methods=["GET"]),
    Route("/adapters/new", adapters.create_adapter, methods=["POST"]),
    Route("/adapters/{name}", adapters.show_adapter, methods=["GET"]),
    Route("/adapters/{name}/edit", adapters.edit_adapter, methods=["GET"]),
    Route("/adapters/{name}/edit", adapters.update_adapter, methods=["POST"]),
    Route("/adapters/{name}/activate", adapters.activate_adapter, methods=["POST"]),
    Route("/adapters/{name}/deactivate", adapters.deactivate_adapter, methods=["POST"]),
    Route("/adapters/{name}/remove", adapters.confirm_remove, methods=["GET"]),
    Route("/adapters/{name}/remove", adapters.remove_adapter, methods=["POST"]),
    Route("/certificates", certificates.show_certificates, methods=["GET"]),
    Route("/certificates/download", certificates.download_certificate, methods=["GET"]),
    Route("/certificates/upload", certificates.upload_certificate, methods=["POST"]),
    Route("/certificates/delete", certificates.confirm_delete, methods=["GET"]),
    Route("/certificates/delete", certificates.delete_certificate, methods=["POST"]),
    Route("/certificates/csr", certificates.download_csr, methods=["POST"]),
    Route("/certificates/apns", certificates.upload_push, methods=["POST"]),
    Route("/certificates/peers", certificates.pin_certificate, methods=["POST"]),
    Route("/certificates/peers/delete", certificates.unpin_certificate, methods=["POST"]),
    Route("/federation", federation.show_federation, methods=["GET"]),
    Route("/federation/policy", federation.save_policy, methods=["POST"]),
    Route("/federation/allow", federation.allow_domain, methods=["POST"]),
    Route("/federation/disallow", federation.disallow_domain, methods=["POST"]),
    Route("/federation/open", federation.open_federation, methods=["POST"]),
    Route("/datasets", data.datasets, methods=["GET"]),
    Route("/datasets/{name}", data.dataset, methods=["GET"]),
    Route("/datasets/{name}/attributes", data.add_attribute, methods=["POST"]),
    Route("/datasets/{name}/attributes/{attr}/phi", data.set_phi, methods=["POST"]),
    Route("/datasets/{name}/records", data.records, methods=["GET"]),
    Route("/datasets/{name}/records", data.save_record, methods=["POST"]),
    Route("/datasets/{name}/records/new", data.new_record, methods=["GET"]),
    Route("/datasets/{name}/records/{record_id}", data.record, methods=["GET"]),
    Route("/datasets/{name}/records/{record_id}", data.save_record, methods=["POST"]),
    Route(
        "/datasets/{name}/records/{record_id}/delete", data.confirm_delete_record, methods=["GET"]
    ),
    Route("/datasets/{name}/records/{record_id}/delete", data.delete_record, methods=["POST"]),
    Route("/rules", rules.rules_list, methods=["GET"]),
    Route("/rules", rules.save_rule, methods=["POST"]),
    Route("/rules/new", rules.new_rule, methods=["GET"]),
    Route("/rules/{rule_id}/edit", rules.edit_rule, methods=["GET"]),
    Route("/rules/{rule_id}/edit", rules.save_rule, methods=["POST"]),
    Route("/rules/{rule_id}/active", rules.set_active, methods=["POST"]),
    Route("/rules/{rule_id}/delete", rules.confirm_delete_rule, methods=["GET"]),
    Route("/rules/{rule_id}/delete", rules.delete_rule, methods=["POST"]),
    Route("/assignments", assignments.assignments, methods=["GET"]),
    Route("/deliveries", logs.deliveries, methods=["GET"]),
    Route("/deliveries.csv", logs.deliveries_csv, methods=["GET"]),
    Route("/deliveries/{delivery_id}", logs.delivery, methods=["GET"]),
    Route("/audit", logs.audit, methods=["GET"]),
    Route("/audit.csv", logs.audit_csv, methods=["GET"]),
    *directory_pages.ROUTES,
    Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
)


def console_config(cfg: Config, *, base_url: str = "") -> ConsoleConfig:
    """The console's view of the configuration (``[console]``, the domain and HTTPS port).

    Links in mail point at ``https://<domain>:<https_port>`` (no port for 443)
    unless ``base_url`` says otherwise.
    """
    port = cfg.server.https_port
    default = f"https://{cfg.server.domain}" + ("" if port == 443 else f":{port}")
    return ConsoleConfig(
        session_timeout=parse_duration(cfg.console.session_timeout, "console.session_timeout"),
        reset_link_ttl=parse_duration(cfg.console.reset_link_ttl, "console.reset_link_ttl"),
        domain=cfg.server.domain,
        base_url=base_url or default,
    )


def create_console(services: ConsoleServices) -> Starlette:
    """The console application on ``services``, to be mounted at ``/``."""
    app = Starlette(
        routes=list(ROUTES),
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
    app.state.services = services
    return app
