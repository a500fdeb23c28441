"""Chat models: the bundled model through LangChain, any OpenAI endpoint, timeouts and the queue.

The real model answers with few tokens to keep this quick; it is loaded once for the module. Its
llama.cpp server is a real OpenAI-compatible endpoint, so the `openai` backend is tested against
it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from quellenchat.llm_model import MODEL_NAME, LLMModelError
from quellenchat.ports import free_port
from quellenchat.settings import Settings
from retrieval.llm import (
    GuardedChatModel,
    LLMConfigError,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
    make_chat_model,
    resolve_backend,
)
from tests.helpers import MODELS_DIR

pytestmark = pytest.mark.slow

SYSTEM = SystemMessage("Du bist ein hilfreicher Assistent. Antworte kurz und auf Deutsch.")
QUESTION = [SYSTEM, HumanMessage("Wie heißt die Hauptstadt von Deutschland?")]
# 16 tokens take far longer than 0.05 s on a CPU
LONG_ANSWER = [SYSTEM, HumanMessage("Erkläre ausführlich, was künstliche Intelligenz ist.")]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(models_dir=MODELS_DIR, llm_threads=2, llm_context=2048, llm_max_tokens=16)


@pytest.fixture(scope="module")
def local(settings: Settings) -> Iterator[GuardedChatModel]:
    model = make_chat_model(settings, "local")
    model.start()
    yield model
    assert model.server is not None
    model.server.stop()


def _openai_settings(local: GuardedChatModel, **overrides: object) -> Settings:
    assert local.server is not None
    values: dict[str, object] = {
        "openai_base_url": local.server.base_url,
        "openai_model": MODEL_NAME,
        "openai_api_key": local.server.api_key,
        "llm_max_tokens": 16,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


# -- the local backend -------------------------------------------------------------------------


def test_local_model_streams_a_german_answer(local: GuardedChatModel) -> None:
    chunks = [chunk.content for chunk in local.stream(QUESTION)]

    assert len(chunks) > 2  # token by token, not one block
    assert all(isinstance(c, str) for c in chunks)
    assert "Berlin" in "".join(str(c) for c in chunks)


def test_local_model_invoke_respects_max_tokens(local: GuardedChatModel) -> None:
    reply = local.invoke(
        [SYSTEM, HumanMessage("Erzähle ausführlich die Geschichte Berlins.")], max_tokens=4
    )

    assert isinstance(reply, AIMessage)
    usage = reply.response_metadata["token_usage"]
    assert usage["completion_tokens"] == 4
    assert reply.response_metadata["finish_reason"] == "length"


def test_warm_up_puts_the_fixed_prefix_into_the_kv_cache(local: GuardedChatModel) -> None:
    system = SystemMessage(f"Sitzung {uuid.uuid4().hex}. {SYSTEM.content}")  # new to the cache
    local.warm_up([system, HumanMessage("Hallo")])
    local.invoke([HumanMessage("Etwas ganz anderes dazwischen.")], max_tokens=1)

    reply = local.invoke([system, HumanMessage("Was bedeutet KMU?")], max_tokens=1)

    usage = reply.response_metadata["token_usage"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 25  # the system prompt and chat template were not computed again
    assert cached < usage["prompt_tokens"]


def test_async_callers_use_the_same_path(local: GuardedChatModel) -> None:
    async def ask() -> list[str]:
        return [str(chunk.content) async for chunk in local.astream(QUESTION)]

    assert "Berlin" in "".join(asyncio.run(ask()))


def test_queue_shows_waiting_requests_in_order(local: GuardedChatModel) -> None:
    answers: list[str] = []
    waiter = threading.Thread(target=lambda: answers.append(str(local.invoke(QUESTION).content)))

    assert local.server is not None
    with local.server.gate.turn():  # another request is running
        assert local.busy
        waiter.start()
        deadline = time.monotonic() + 30
        while local.waiting != 1:
            assert time.monotonic() < deadline, "the waiting request was never counted"
            time.sleep(0.01)
        assert answers == []  # it waits for its turn
    waiter.join()

    assert "Berlin" in answers[0]
    assert local.waiting == 0
    assert not local.busy


def test_waiting_too_long_in_the_queue_is_a_timeout(
    local: GuardedChatModel, settings: Settings
) -> None:
    impatient = make_chat_model(settings.model_copy(update={"llm_timeout": 0.2}), "local")
    assert impatient.server is local.server  # one model, one queue, whoever asks

    assert local.server is not None
    with local.server.gate.turn(), pytest.raises(LLMTimeoutError, match="ausgelastet"):
        impatient.invoke(QUESTION)

    assert local.waiting == 0


def test_abandoned_stream_frees_the_queue(local: GuardedChatModel) -> None:
    stream = local.stream(LONG_ANSWER)
    next(stream)
    assert local.busy

    stream.close()

    assert not local.busy
    assert "Berlin" in str(local.invoke(QUESTION).content)


def test_local_timeout_is_a_catchable_error(local: GuardedChatModel, settings: Settings) -> None:
    hasty = make_chat_model(settings.model_copy(update={"llm_timeout": 0.05}), "local")

    with pytest.raises(LLMTimeoutError, match=r"nicht innerhalb von 0\.05 s"):
        hasty.invoke(LONG_ANSWER)
    with pytest.raises(TimeoutError):  # also a plain TimeoutError for generic callers
        list(hasty.stream(LONG_ANSWER))

    assert "Berlin" in str(local.invoke(QUESTION).content)  # the server is fine afterwards


# -- the openai backend, against the llama.cpp server as a real OpenAI-compatible endpoint ---


def test_openai_backend_answers_through_any_compatible_endpoint(local: GuardedChatModel) -> None:
    remote = make_chat_model(_openai_settings(local), "openai")

    text = "".join(str(chunk.content) for chunk in remote.stream(QUESTION))

    assert "Berlin" in text
    assert remote.server is None
    assert remote.waiting == 0


def test_openai_timeout_is_a_catchable_error(local: GuardedChatModel) -> None:
    remote = make_chat_model(_openai_settings(local, llm_timeout=0.05), "openai")

    with pytest.raises(LLMTimeoutError, match=r"nicht innerhalb von 0\.05 s"):
        remote.invoke(LONG_ANSWER)


def test_openai_wrong_key_is_reported(local: GuardedChatModel) -> None:
    remote = make_chat_model(_openai_settings(local, openai_api_key="falsch"), "openai")

    with pytest.raises(LLMError, match="meldet Fehler 401"):
        remote.invoke(QUESTION)


def test_unreachable_endpoint_is_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    remote = make_chat_model(Settings(openai_base_url=url, openai_model="m"), "openai")

    with pytest.raises(LLMUnavailableError, match="nicht erreichbar") as caught:
        remote.invoke(QUESTION)
    assert url in str(caught.value)


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        pytest.param({}, "QUELLENCHAT_OPENAI_BASE_URL und QUELLENCHAT_OPENAI_MODEL", id="neither"),
        pytest.param({"openai_model": "m"}, "QUELLENCHAT_OPENAI_BASE_URL", id="no-url"),
        pytest.param({"openai_base_url": "http://x/v1"}, "QUELLENCHAT_OPENAI_MODEL", id="no-model"),
    ],
)
def test_openai_without_url_or_model_is_refused(overrides: dict[str, str], missing: str) -> None:
    with pytest.raises(LLMConfigError, match=f"fehlt {missing} "):
        make_chat_model(Settings(**overrides), "openai")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["extractive", "auto", "gpt"])
def test_backends_without_a_chat_model_are_refused(backend: str) -> None:
    with pytest.raises(LLMConfigError, match="möglich sind local und openai"):
        make_chat_model(Settings(), backend)


def test_local_with_a_missing_model_file_is_refused(tmp_path: object) -> None:
    settings = Settings(llm_model_path="/nicht/da/modell.gguf")  # type: ignore[arg-type]
    with pytest.raises(LLMModelError, match="gibt es nicht"):
        make_chat_model(settings, "local")


def test_auto_picks_local_when_installed_else_extractive(settings: Settings) -> None:
    assert resolve_backend(settings) == "extractive"  # the default: it measures best
    settings = settings.model_copy(update={"llm_backend": "auto"})
    assert resolve_backend(settings) == "local"  # the bundled packages are installed
    missing = settings.model_copy(update={"llm_model_path": MODELS_DIR / "fehlt.gguf"})
    assert resolve_backend(missing) == "extractive"
    for backend in ("local", "openai", "extractive"):
        chosen = settings.model_copy(update={"llm_backend": backend})
        assert resolve_backend(chosen) == backend
