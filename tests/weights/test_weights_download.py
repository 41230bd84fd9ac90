"""Resumable, verified downloads against a loopback server: resume with Range (within a call and
across calls), digest and size mismatches, mirrors in order, retries, offline mode, unreachable
and silent servers. No test touches the internet: every URL is 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest
from range_server import RangeServer, closed_port

from voxelprompt.errors import WeightsError, WeightsUnreachable
from voxelprompt.weights import (
    WEIGHTS,
    FetchSettings,
    HashTrust,
    Verdict,
    fetch,
    part_path,
    verify,
    weight_path,
)

FAST = FetchSettings(timeout=5, attempts=1, backoff=0, chunk=16 << 10)


@pytest.fixture
def payload() -> bytes:
    return random.Random(7).randbytes(300_000)


def entry(payload: bytes, **changes):
    """A registry entry for ``payload`` (the SegVol record with the test file's facts)."""
    facts = dict(
        name="test-weights",
        file_name="w.bin",
        urls=("http://127.0.0.1:9/unused",),
        size_bytes=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        md5=None,
        trust=HashTrust.upstream,
    )
    facts.update(changes)
    return dataclasses.replace(WEIGHTS["segvol-v1"], **facts)


def served(server: RangeServer, weight, payload: bytes) -> str:
    path = f"/{weight.name}/{weight.file_name}"
    server.files[path] = payload
    return server.url + path


def test_download_lands_verified_and_atomic(payload):
    weight = entry(payload)
    seen = []
    with RangeServer() as server:
        url = served(server, weight, payload)
        result = fetch(weight, urls=[url], settings=FAST, progress=lambda done, total: seen.append((done, total)))
    assert result.downloaded and result.url == url and result.bytes_received == len(payload)
    assert weight_path(weight).read_bytes() == payload and not part_path(weight).exists()
    assert result.digests.sha256 == weight.sha256 and "sha256 matches" in result.detail
    assert seen[-1] == (len(payload), len(payload)) and len(seen) > 1
    assert [r.range for r in server.log] == [None]


def test_a_dropped_connection_resumes_with_range_in_the_same_call(payload):
    weight = entry(payload)
    with RangeServer() as server:
        url = served(server, weight, payload)
        server.drop_after[f"/{weight.name}/{weight.file_name}"] = [120_000]
        result = fetch(weight, urls=[url], settings=dataclasses.replace(FAST, attempts=3))
    assert weight_path(weight).read_bytes() == payload
    assert [r.range for r in server.log] == [None, "bytes=120000-"]
    assert result.bytes_received == len(payload)  # 120,000 then the rest


def test_range_survives_a_redirect(payload):
    weight = entry(payload)
    with RangeServer() as server:
        server.files["/cdn/blob"] = payload
        server.redirects["/resolve/w.bin"] = "/cdn/blob"
        server.drop_after["/cdn/blob"] = [64_000]
        fetch(weight, urls=[server.url + "/resolve/w.bin"], settings=dataclasses.replace(FAST, attempts=2))
    assert weight_path(weight).read_bytes() == payload
    assert [(r.path, r.range) for r in server.log] == [
        ("/resolve/w.bin", None), ("/cdn/blob", None), ("/resolve/w.bin", "bytes=64000-"), ("/cdn/blob", "bytes=64000-")
    ]


def test_a_rerun_resumes_the_part_left_by_a_failed_run(payload):
    weight = entry(payload)
    with RangeServer() as server:
        url = served(server, weight, payload)
        server.drop_after[f"/{weight.name}/{weight.file_name}"] = [100_000]
        with pytest.raises(WeightsError, match=r"100,000 bytes kept in w.bin.part"):
            fetch(weight, urls=[url], settings=FAST)
        assert part_path(weight).stat().st_size == 100_000 and not weight_path(weight).exists()
        result = fetch(weight, urls=[url], settings=FAST)
    assert result.bytes_received == len(payload) - 100_000
    assert weight_path(weight).read_bytes() == payload and not part_path(weight).exists()
    assert [r.range for r in server.log] == [None, "bytes=100000-"]


def test_a_server_that_ignores_range_restarts_the_file(payload):
    weight = entry(payload)
    part = part_path(weight)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 50_000)  # wrong bytes: the server's full answer replaces them
    with RangeServer() as server:
        server.ignore_range = True
        fetch(weight, urls=[served(server, weight, payload)], settings=FAST)
    assert weight_path(weight).read_bytes() == payload
    assert [r.range for r in server.log] == ["bytes=50000-"]


def test_a_complete_part_is_checked_without_another_body(payload):
    weight = entry(payload, size_bytes=None)  # unknown size: the server's 416 says the part is whole
    part = part_path(weight)
    part.parent.mkdir(parents=True)
    part.write_bytes(payload)
    with RangeServer() as server:
        result = fetch(weight, urls=[served(server, weight, payload)], settings=FAST)
    assert result.downloaded and result.bytes_received == 0 and weight_path(weight).read_bytes() == payload
    assert [r.range for r in server.log] == [f"bytes={len(payload)}-"]


def test_a_digest_mismatch_deletes_the_part(payload):
    weight = entry(payload, sha256="0" * 64)
    with RangeServer() as server:
        with pytest.raises(WeightsError) as info:
            fetch(weight, urls=[served(server, weight, payload)], settings=FAST)
    message = str(info.value)
    assert "corrupt" in message and "0" * 64 in message and "\n" not in message
    assert not part_path(weight).exists() and not weight_path(weight).exists()


def test_a_size_mismatch_is_caught_before_hashing_matters(payload):
    weight = entry(payload, size_bytes=len(payload) + 1)
    with RangeServer() as server:
        with pytest.raises(WeightsError, match=f"size {len(payload):,} bytes, expected {len(payload) + 1:,}"):
            fetch(weight, urls=[served(server, weight, payload)], settings=FAST)
    assert not part_path(weight).exists()


def test_md5_only_records_are_checked_with_md5(payload):
    good = entry(payload, sha256=None, md5=hashlib.md5(payload).hexdigest(), size_bytes=None)
    with RangeServer() as server:
        result = fetch(good, urls=[served(server, good, payload)], settings=FAST)
        assert "md5 matches" in result.detail and hashlib.sha256(payload).hexdigest() in result.detail
        bad = dataclasses.replace(good, name="bad", md5="f" * 32)
        with pytest.raises(WeightsError, match="md5"):
            fetch(bad, urls=[served(server, bad, payload)], settings=FAST)


def test_no_recorded_hash_is_accepted_and_reported_as_unverifiable(payload):
    weight = entry(payload, sha256=None, md5=None, trust=HashTrust.none)
    with RangeServer() as server:
        result = fetch(weight, urls=[served(server, weight, payload)], settings=FAST)
    assert "no upstream hash" in result.detail and hashlib.sha256(payload).hexdigest() in result.detail
    checked = verify(weight)
    assert checked.verdict is Verdict.unverifiable and checked.digests.sha256 == hashlib.sha256(payload).hexdigest()


def test_mirrors_are_tried_in_order_and_retries_back_off(payload):
    weight = entry(payload)
    path = f"/{weight.name}/{weight.file_name}"
    with RangeServer() as first, RangeServer() as second:
        second.files[path] = payload
        second.statuses[path] = [503]  # one transient failure, retried on the same mirror
        result = fetch(weight, urls=[first.url + path, second.url + path], settings=dataclasses.replace(FAST, attempts=2))
    assert result.url == second.url + path and weight_path(weight).read_bytes() == payload
    assert len(first.log) == 1  # 404: no retry on that mirror
    assert len(second.log) == 2


def test_offline_never_opens_a_connection_and_says_where_to_put_the_file(payload):
    weight = entry(payload)
    with RangeServer() as server:
        with pytest.raises(WeightsError) as info:
            fetch(weight, urls=[served(server, weight, payload)], offline=True, settings=FAST)
    message = str(info.value)
    assert server.log == []
    assert str(weight_path(weight)) in message and weight.urls[0] in message and weight.sha256 in message


def test_a_refused_connection_fails_at_once_with_the_manual_route(payload):
    """Nothing listens: no network to retry on, so one try and the way to get the file by hand."""
    weight = entry(payload)
    url = f"http://127.0.0.1:{closed_port()}/{weight.name}/{weight.file_name}"
    with pytest.raises(WeightsUnreachable) as info:
        fetch(weight, urls=[url], settings=dataclasses.replace(FAST, attempts=4, backoff=30))  # a retry would take 30 s
    message = str(info.value)
    assert "cannot reach any source of test-weights" in message and "place it at" in message and "\n" not in message
    assert not weight_path(weight).exists()


def test_a_silent_server_times_out(payload):
    weight = entry(payload)
    with RangeServer() as server:
        url = served(server, weight, payload)
        server.stall()
        with pytest.raises(WeightsError, match="timed out"):
            fetch(weight, urls=[url], settings=dataclasses.replace(FAST, timeout=0.3))
    assert len(server.log) == 1


def test_a_cached_file_is_verified_not_downloaded_again(payload):
    weight = entry(payload)
    target = weight_path(weight)
    target.parent.mkdir(parents=True)
    target.write_bytes(payload)
    with RangeServer() as server:
        result = fetch(weight, urls=[served(server, weight, payload)], settings=FAST)
        assert not result.downloaded and server.log == []
        target.write_bytes(payload[:-1] + b"x")
        with pytest.raises(WeightsError, match="does not match test-weights"):
            fetch(weight, urls=[served(server, weight, payload)], settings=FAST)
    assert server.log == [] and target.exists()  # a user's file is never deleted


def test_bad_settings_and_urls_are_one_line_errors(payload):
    with pytest.raises(WeightsError, match="--timeout"):
        FetchSettings(timeout=0)
    with pytest.raises(WeightsError, match="--retries"):
        FetchSettings(attempts=0)
    with pytest.raises(WeightsError, match="not http"):
        fetch(entry(payload), urls=["ftp://example.org/w.bin"], settings=FAST)
