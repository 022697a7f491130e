"""What the server builds around an :class:`~carewire.assembly.Assembly`.

The certificate manager, the XMPP login services, and the services the REST API
and the console get: built from the assembly and the configuration by the server
(:mod:`carewire.server`) and by tests that serve the web layers.
"""

from __future__ import annotations

from collections.abc import Sequence

from carewire.assembly import Assembly
from carewire.assembly_scim import scim_provisioning
from carewire.config import Config, parse_duration
from carewire.core.auth import Authenticator, LockoutPolicy, LoginAuditor, LoginSink
from carewire.core.stores import LoginAttempt, LoginOutcome
from carewire.mail import mailer_from_config
from carewire.monitoring.model import StatusSource
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome
from carewire.security.cert_manager import CertificateManager
from carewire.security.enrolled import enrolled_device_check
from carewire.web.api.deps import ApiServices
from carewire.web.console import ConsoleServices, console_config


def certificate_manager(cfg: Config, assembly: Assembly) -> CertificateManager:
    """The chat domain's certificate manager (its changes go to the audit trail)."""
    return CertificateManager(
        cfg.data_dir,
        cfg.server.domain,
        assembly.clock,
        assembly.audit,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
    )


def login_event(attempt: LoginAttempt) -> AuditEvent:
    """The audit-trail event of one XMPP login attempt (``login`` by ``xmpp:<login>``)."""
    details = {
        "mechanism": attempt.mechanism,
        "transport": attempt.transport,
        "result": LoginOutcome(attempt.outcome).value,
    }
    if attempt.reason:
        details["reason"] = attempt.reason
    return AuditEvent(
        actor=f"xmpp:{attempt.login}",
        channel=Channel.XMPP,
        action="login",
        target=attempt.login,
        outcome=Outcome.SUCCESS if attempt.outcome is LoginOutcome.SUCCESS else Outcome.FAILURE,
        remote_ip=attempt.remote_ip,
        details=details,
    )


def login_sink(audit: AuditTrail) -> LoginSink:
    """The login auditor's sink: each written batch is appended to the audit trail too."""

    async def sink(attempts: Sequence[LoginAttempt]) -> None:
        await audit.record_many([(a.at, login_event(a)) for a in attempts])

    return sink


def login_services(cfg: Config, assembly: Assembly) -> tuple[LoginAuditor, Authenticator]:
    """The batched login audit and the authenticator under the configured lockout policy."""
    x = cfg.xmpp
    auditor = LoginAuditor(assembly.stores, sink=login_sink(assembly.audit))
    policy = LockoutPolicy(
        delay_after=x.login_delay_after,
        delay=parse_duration(x.login_delay, "xmpp.login_delay"),
        lock_after=x.lockout_after,
    )
    authenticator = Authenticator(
        assembly.stores,
        assembly.clock,
        auditor,
        policy,
        throttle=assembly.throttle,
        enrolled=enrolled_device_check(assembly.datasets),
        on_locked=assembly.lockouts.locked,
        external=assembly.ldap,
    )
    return auditor, authenticator


def api_services(assembly: Assembly, certificates: CertificateManager | None) -> ApiServices:
    """What the REST API calls."""
    return ApiServices(
        registry=assembly.registry,
        datasets=assembly.datasets,
        tokens=assembly.tokens,
        adapters=assembly.adapters,
        rules=assembly.rules,
        engine=assembly.engine,
        audit=assembly.audit,
        certificates=certificates,
        chat=assembly.chat,
        directory=assembly.directory,
        coverage=assembly.coverage,
        throttle=assembly.throttle,
        push=assembly.push,
        ldap=assembly.ldap,
        scim=scim_provisioning(assembly).tokens,
        federation=assembly.federation,
    )


def console_services(
    cfg: Config,
    assembly: Assembly,
    certificates: CertificateManager | None,
    status: StatusSource | None = None,
) -> ConsoleServices:
    """What the web console's pages call (``status``: the dashboard's live figures)."""
    return ConsoleServices(
        accounts=assembly.console,
        audit=assembly.audit,
        mailer=mailer_from_config(cfg),
        config=console_config(cfg),
        registry=assembly.registry,
        datasets=assembly.datasets,
        adapters=assembly.adapters,
        rules=assembly.rules,
        engine=assembly.engine,
        certificates=certificates,
        directory=assembly.directory,
        coverage=assembly.coverage,
        ldap=assembly.ldap,
        scim=scim_provisioning(assembly),
        federation=assembly.federation,
        status=status,
    )
