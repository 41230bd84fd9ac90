"""The default model (:func:`voxelprompt.weights.default.default_model`): cached weights, consent,
a verified download from a loopback server, the demo fallback offline or unreachable."""

from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest
from range_server import RangeServer, closed_port

from voxelprompt.errors import WeightsError
from voxelprompt.families.vista3d.inference.default_model import is_demo_checkpoint
from voxelprompt.weights import WEIGHTS, FetchSettings, HashTrust, weight_path
from voxelprompt.weights.default import DEFAULT_WEIGHTS, default_model

FAST = FetchSettings(timeout=5, attempts=3, backoff=0, chunk=16 << 10)


@pytest.fixture()
def payload(monkeypatch) -> bytes:
    """Stand-in bytes, with the default registry entry's size and digest set to theirs."""
    data = random.Random(3).randbytes(200_000)
    entry = dataclasses.replace(
        WEIGHTS[DEFAULT_WEIGHTS], size_bytes=len(data), md5=hashlib.md5(data).hexdigest(), sha256=None, trust=HashTrust.upstream
    )
    monkeypatch.setitem(WEIGHTS, DEFAULT_WEIGHTS, entry)
    return data


def test_cached_weights_are_used_without_asking(payload):
    path = weight_path(WEIGHTS[DEFAULT_WEIGHTS])
    path.parent.mkdir(parents=True)
    path.write_bytes(payload)
    choice = default_model(ask=lambda question: pytest.fail("asked although cached"))
    assert choice.checkpoint == path and not choice.demo and choice.message is None


def test_no_consent_means_the_demo_model(payload):
    questions = []
    choice = default_model(ask=lambda question: questions.append(question) or False)
    assert choice.demo and is_demo_checkpoint(choice.checkpoint)
    assert len(questions) == 1 and "872 MB" in questions[0] and "licence" in questions[0] and "https://" in questions[0]
    assert "--download" in choice.message and "\n" not in choice.message


def test_a_yes_downloads_verifies_and_uses_the_weights(payload):
    seen = []
    with RangeServer() as server:
        server.files["/w/model.pt"] = payload
        choice = default_model(ask=lambda q: True, urls=[server.url + "/w/model.pt"], settings=FAST,
                               progress=lambda done, total: seen.append(done))  # fmt: skip
    assert not choice.demo and choice.checkpoint == weight_path(WEIGHTS[DEFAULT_WEIGHTS])
    assert choice.checkpoint.read_bytes() == payload and seen[-1] == len(payload)
    assert "md5 matches" in choice.message


def test_a_corrupt_download_is_an_error_not_a_silent_demo(payload):
    with RangeServer() as server:
        server.files["/w/model.pt"] = payload[::-1]
        with pytest.raises(WeightsError, match="corrupt"):
            default_model(download=True, urls=[server.url + "/w/model.pt"], settings=FAST)


def test_offline_and_unreachable_fall_back_with_the_manual_route(payload, monkeypatch):
    offline = default_model(download=True, offline=True)
    assert offline.demo and "offline" in offline.message and "place it at" in offline.message
    with RangeServer() as server:  # one live mirror counts the tries: none, since the other refuses
        unreachable = default_model(download=True, urls=[f"http://127.0.0.1:{closed_port()}/w/model.pt"], settings=FAST)
        assert not server.log
    assert unreachable.demo and "cannot reach" in unreachable.message and "place it at" in unreachable.message


def test_a_name_that_does_not_resolve_is_not_retried(payload, monkeypatch):
    import socket

    calls = []

    def no_dns(*args, **kwargs):
        calls.append(args[0])
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    choice = default_model(download=True, urls=["https://weights.example.invalid/model.pt"], settings=FAST)
    assert choice.demo and "Name or service not known" in choice.message
    assert calls == ["weights.example.invalid"]  # one lookup, no retries
