"""AuthInterceptor: callers send a token in Temporal headers; workers verify and authorize it."""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import temporalio.activity
import temporalio.api.common.v1
import temporalio.client
import temporalio.converter
import temporalio.exceptions
import temporalio.worker
import temporalio.workflow

from shadow_sdk._exceptions import AuthError, TokenError
from shadow_sdk.auth._policy import Policy
from shadow_sdk.auth._tokens import Identity, TokenVerifier

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings

HEADER = "shadow-auth-token"
"""Temporal header that carries the caller's token."""
TOKEN_MARKER = ("shadow-payload", b"auth-token")
"""Metadata entry that marks a payload as a token, so that decoding tools can redact it."""
_REDACTED = "<auth token redacted>"
PERMISSION_DENIED = "PermissionDenied"
"""``ApplicationError`` type of a workflow start that was denied."""
AUTH_DENIALS = "shadow_auth_denials"
"""Counter of denied calls, by ``permission`` (``shadow_auth_denials_total``)."""

logger = logging.getLogger("shadow_sdk.auth")

Headers = Mapping[str, temporalio.api.common.v1.Payload]
TokenSource = str | Callable[[], str | None]

_activity_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "shadow_sdk_activity_identity", default=None
)
_call_token: contextvars.ContextVar[temporalio.api.common.v1.Payload | None] = (
    contextvars.ContextVar("shadow_sdk_call_token", default=None)
)
_payloads = temporalio.converter.PayloadConverter.default


def redact_tokens(
    payloads: Iterable[temporalio.api.common.v1.Payload],
) -> list[temporalio.api.common.v1.Payload]:
    """Replace decoded token payloads by a placeholder.

    The codec server and ``shadow decode`` show payloads to people; a token they
    could read in a history would let them act as its subject until it expires.
    """
    redacted = []
    for payload in payloads:
        if payload.metadata.get(TOKEN_MARKER[0]) == TOKEN_MARKER[1]:
            payload = _payloads.to_payload(_REDACTED)  # noqa: PLW2901
            payload.metadata[TOKEN_MARKER[0]] = TOKEN_MARKER[1]
        redacted.append(payload)
    return redacted


def current_identity() -> Identity | None:
    """The identity of the call an activity runs for, if it carried a token.

    That is the caller whose call led to the activity: the workflow's starter for
    activities of the main routine, the signaller or updater for activities of
    their handlers; child workflows inherit it the same way. Only its signature
    is checked here, not its expiry: the call was authorized when it was made.
    """
    return _activity_identity.get()


@dataclass(frozen=True)
class Authorizer:
    """Verifies the token in a call's headers and checks the policy.

    Args:
        verifier: Verifies token signatures and claims.
        policy: Decides what each role may do.
    """

    verifier: TokenVerifier
    policy: Policy

    @classmethod
    def from_settings(
        cls, settings: ShadowSettings, *, policy: Policy | None = None
    ) -> Authorizer | None:
        """The verifier (:meth:`TokenVerifier.from_settings`) and policy of the settings.

        Args:
            settings: The auth settings.
            policy: The policy; by default :meth:`Policy.from_settings`.

        Returns:
            The authorizer, or ``None`` when no way to verify tokens is configured.

        Raises:
            SettingsError: The verifier or the policy cannot be built; the message
                names the variable.
        """
        verifier = TokenVerifier.from_settings(settings)
        if verifier is None:
            return None
        return cls(verifier, Policy.from_settings(settings) if policy is None else policy)

    def identity(self, headers: Headers, *, now: datetime, check_time: bool = True) -> Identity:
        """The verified identity in ``headers``.

        Raises:
            TokenError: No token, or one that is not valid.
        """
        payload = headers.get(HEADER)
        if payload is None:
            raise TokenError("no token: the call carries no shadow-auth-token header")
        try:
            token = _payloads.from_payload(payload, str)
        except Exception:
            raise TokenError("malformed token header") from None
        if not isinstance(token, str):
            raise TokenError("malformed token header")
        return self.verifier.verify(token, now=now, check_time=check_time)

    def authorize(
        self,
        headers: Headers,
        permission: str,
        *,
        namespace: str,
        workflow_type: str | None,
        now: datetime,
        check_time: bool = True,
    ) -> Identity:
        """The identity in ``headers`` if it may do ``permission``.

        Raises:
            AuthError: :class:`~shadow_sdk.TokenError` or
                :class:`~shadow_sdk.PermissionDenied`, with the reason.
        """
        identity = self.identity(headers, now=now, check_time=check_time)
        self.policy.check(identity, permission, namespace=namespace, workflow_type=workflow_type)
        return identity


class AuthInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Token authentication and role-based authorization for workflow calls.

    On a client (``token`` given), it puts the caller's token into the headers of
    workflow starts, signals, queries and updates, and into the start action of
    schedules it creates or whose action it sets, so scheduled runs act as whoever
    set the schedule (judged when each run starts: a schedule outlives a token
    only until the token expires). With
    ``HeaderCodecBehavior.CODEC`` (which :class:`~shadow_sdk.ShadowPlugin` sets
    when payloads are encrypted) the token is encrypted like any payload, so it
    is never stored in plain text in workflow history.

    On a worker (``authorizer`` given), it verifies the token and checks the
    policy before workflow code sees the call:

    * a denied **start** fails the workflow at once with a non-retryable
      ``ApplicationError`` of type ``PermissionDenied``;
    * a denied **update** is rejected by validation (an update without a
      validator is accepted and then fails, leaving the workflow untouched);
    * a denied **query** fails for the caller;
    * a denied **signal** is dropped and logged; it never changes workflow state
      and never fails the workflow.

    Token times are judged by ``workflow.now()``, the time of the workflow task
    that carried the call, so replaying a history later reaches the same verdict.
    Queries, which are never replayed, are judged by the wall clock. Activities
    and child workflows inherit the identity through the same header; a child
    workflow, a continued-as-new run or a retry is verified without its expiry,
    as its start was authorized when the original call was made.

    Args:
        token: The caller's token, or a function returning the current one (so a
            token file can be rotated without a restart).
        authorizer: Verifies and authorizes calls on workers.
    """

    def __init__(
        self, *, token: TokenSource | None = None, authorizer: Authorizer | None = None
    ) -> None:
        if token is None and authorizer is None:
            raise ValueError("give token (for clients), authorizer (for workers), or both")
        self._token = token
        self.authorizer = authorizer

    def token_payload(self) -> temporalio.api.common.v1.Payload | None:
        """The current token as a header payload, marked as a token, if there is one."""
        token = self._token() if callable(self._token) else self._token
        if token is None:
            return None
        payload = _payloads.to_payload(token)
        payload.metadata[TOKEN_MARKER[0]] = TOKEN_MARKER[1]
        return payload

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        """See base class."""
        return _ClientOutbound(next, self) if self._token is not None else next

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        """See base class."""
        return _ActivityInbound(next, self.authorizer) if self.authorizer else next

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor] | None:
        """See base class."""
        if self.authorizer is None:
            return None
        authorizer = self.authorizer

        class _BoundWorkflowInbound(AuthWorkflowInboundInterceptor):
            pass

        _BoundWorkflowInbound.authorizer = authorizer
        return _BoundWorkflowInbound


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    def __init__(self, next: temporalio.client.OutboundInterceptor, root: AuthInterceptor) -> None:
        super().__init__(next)
        self.root = root

    def _with_token(self, headers: Headers) -> Headers:
        payload = self.root.token_payload()
        return headers if payload is None else {**headers, HEADER: payload}

    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        input.headers = self._with_token(input.headers)
        return await super().start_workflow(input)

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        input.headers = self._with_token(input.headers)
        await super().signal_workflow(input)

    async def query_workflow(self, input: temporalio.client.QueryWorkflowInput) -> Any:
        input.headers = self._with_token(input.headers)
        return await super().query_workflow(input)

    async def start_workflow_update(
        self, input: temporalio.client.StartWorkflowUpdateInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        input.headers = self._with_token(input.headers)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: temporalio.client.StartWorkflowUpdateWithStartInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        start, update = input.start_workflow_input, input.update_workflow_input
        start.headers = self._with_token(start.headers)
        update.headers = self._with_token(update.headers)
        return await super().start_update_with_start_workflow(input)

    async def create_schedule(
        self, input: temporalio.client.CreateScheduleInput
    ) -> temporalio.client.ScheduleHandle:
        self._sign(input.schedule)
        return await super().create_schedule(input)

    async def update_schedule(self, input: temporalio.client.UpdateScheduleInput) -> None:
        updater = input.updater

        async def signing_updater(
            schedule: temporalio.client.ScheduleUpdateInput,
        ) -> temporalio.client.ScheduleUpdate | None:
            update = updater(schedule)
            if inspect.isawaitable(update):
                update = await update
            if update is not None:
                self._sign(update.schedule)
            return update

        input.updater = signing_updater
        await super().update_schedule(input)

    def _sign(self, schedule: temporalio.client.Schedule) -> None:
        """Put the token into the headers of the runs the schedule will start.

        An action read back from the server (an update that keeps it) keeps the
        token it has: temporalio stores such headers as they are, so a new token
        added there would be stored unencrypted.
        """
        action = schedule.action
        if isinstance(action, temporalio.client.ScheduleActionStartWorkflow) and not getattr(
            action, "_from_raw", False
        ):
            action.headers = self._with_token(action.headers or {})


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    def __init__(
        self, next: temporalio.worker.ActivityInboundInterceptor, authorizer: Authorizer
    ) -> None:
        super().__init__(next)
        self.authorizer = authorizer

    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        try:
            identity = self.authorizer.identity(
                input.headers, now=datetime.now(UTC), check_time=False
            )
        except TokenError as error:
            info = temporalio.activity.info()
            logger.debug("activity %s runs without identity: %s", info.activity_type, error)
            identity = None
        reset = _activity_identity.set(identity)
        try:
            return await super().execute_activity(input)
        finally:
            _activity_identity.reset(reset)


class AuthWorkflowInboundInterceptor(temporalio.worker.WorkflowInboundInterceptor):
    """Verifies and authorizes every call into a workflow; see :class:`AuthInterceptor`.

    Subclass it to change how denials are handled, for example to record denied
    signals differently; :meth:`AuthInterceptor.workflow_interceptor_class`
    binds :attr:`authorizer`.
    """

    authorizer: Authorizer

    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        """See base class."""
        self._start_token: temporalio.api.common.v1.Payload | None = None
        self._start_decided = False
        self._start_allowed = False
        super().init(_WorkflowOutbound(outbound, self))

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        """Authorize ``workflow:start``; a denial fails the workflow, never to be retried.

        A child workflow or a run continued as new was started by workflow code
        whose own start was authorized, so its inherited token is verified
        without its expiry. A retried or cron run reuses the original request and
        is judged like it, by the time it starts now.
        """
        info = temporalio.workflow.info()
        continued = info.continued_run_id is not None and not info.cron_schedule
        inherited = info.parent is not None or (continued and info.attempt == 1)
        try:
            self._authorize(input.headers, "workflow:start", check_time=not inherited)
            self._start_allowed = True
        finally:
            self._start_decided = True
        self._start_token = input.headers[HEADER]
        _call_token.set(self._start_token)
        return await super().execute_workflow(input)

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        """Authorize ``workflow:signal``; a denied signal is dropped and logged.

        A signal that arrives with the start (signal-with-start) waits until the
        start is authorized, and is dropped if it is not.
        """
        try:
            self._authorize(input.headers, "workflow:signal")
        except temporalio.exceptions.ApplicationError as denial:
            temporalio.workflow.logger.warning(
                "dropped signal %r: %s", input.signal, denial.message
            )
            return
        await temporalio.workflow.wait_condition(lambda: self._start_decided)
        if not self._start_allowed:
            return
        _call_token.set(input.headers.get(HEADER))
        await super().handle_signal(input)

    async def handle_query(self, input: temporalio.worker.HandleQueryInput) -> Any:
        """Authorize ``workflow:query`` by the wall clock; a denial fails the query."""
        self._authorize(input.headers, "workflow:query", now=datetime.now(UTC))
        return await super().handle_query(input)

    def handle_update_validator(self, input: temporalio.worker.HandleUpdateInput) -> None:
        """Authorize ``workflow:update``; a denial rejects the update.

        An update that arrives with the start (update-with-start) is rejected
        unless its caller may also start the workflow.
        """
        self._authorize(input.headers, "workflow:update")
        if not self._start_decided:
            self._authorize(input.headers, "workflow:start")
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        """Authorize ``workflow:update`` again (updates may have no validator), after the start."""
        self._authorize(input.headers, "workflow:update")
        await temporalio.workflow.wait_condition(lambda: self._start_decided)
        if not self._start_allowed:
            raise temporalio.exceptions.ApplicationError(
                "workflow:update denied: the workflow's start was denied",
                type=PERMISSION_DENIED,
                non_retryable=True,
            )
        _call_token.set(input.headers.get(HEADER))
        return await super().handle_update_handler(input)

    def _authorize(
        self,
        headers: Headers,
        permission: str,
        *,
        now: datetime | None = None,
        check_time: bool = True,
    ) -> Identity:
        """The caller's identity, or an ``ApplicationError`` of type ``PermissionDenied``.

        An ``ApplicationError`` fails the start, the update or the query; any
        other exception would fail the workflow task, which Temporal retries
        until the code changes.
        """
        info = temporalio.workflow.info()
        try:
            return self.authorizer.authorize(
                headers,
                permission,
                namespace=info.namespace,
                workflow_type=info.workflow_type,
                now=now or temporalio.workflow.now(),
                check_time=check_time,
            )
        except AuthError as error:
            temporalio.workflow.metric_meter().create_counter(
                AUTH_DENIALS, "Calls refused by authorization"
            ).add(1, {"permission": permission})
            raise temporalio.exceptions.ApplicationError(
                f"{permission} denied: {error}", type=PERMISSION_DENIED, non_retryable=True
            ) from None


class _WorkflowOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    """Passes the token of the call being handled on to what that call leads to.

    Activities, child workflows and signals sent from the main routine carry the
    starter's token; from a signal or update handler (each runs in a task of its
    own), the token of that signal or update.
    """

    def __init__(
        self,
        next: temporalio.worker.WorkflowOutboundInterceptor,
        inbound: AuthWorkflowInboundInterceptor,
    ) -> None:
        super().__init__(next)
        self.inbound = inbound

    def _with_token(self, headers: Headers) -> Headers:
        token = _call_token.get() or self.inbound._start_token
        return headers if token is None or HEADER in headers else {**headers, HEADER: token}

    def continue_as_new(self, input: temporalio.worker.ContinueAsNewInput) -> NoReturn:
        input.headers = self._with_token(input.headers)
        super().continue_as_new(input)

    async def signal_child_workflow(
        self, input: temporalio.worker.SignalChildWorkflowInput
    ) -> None:
        input.headers = self._with_token(input.headers)
        await super().signal_child_workflow(input)

    async def signal_external_workflow(
        self, input: temporalio.worker.SignalExternalWorkflowInput
    ) -> None:
        input.headers = self._with_token(input.headers)
        await super().signal_external_workflow(input)

    def start_activity(
        self, input: temporalio.worker.StartActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        input.headers = self._with_token(input.headers)
        return super().start_activity(input)

    async def start_child_workflow(
        self, input: temporalio.worker.StartChildWorkflowInput
    ) -> temporalio.workflow.ChildWorkflowHandle[Any, Any]:
        input.headers = self._with_token(input.headers)
        return await super().start_child_workflow(input)

    def start_local_activity(
        self, input: temporalio.worker.StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        input.headers = self._with_token(input.headers)
        return super().start_local_activity(input)
