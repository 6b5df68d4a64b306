"""Repositories over HTTP, and the operational endpoints."""

from __future__ import annotations

import aiohttp
from conftest import Running, StartServer, free_port


async def test_repository_metadata_lists_size_and_graphs(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.put(server.repo_url("/service?graph=http://example.org/g"), data=b"<http://a> <http://b> 1 .",
                        headers={"Content-Type": "text/turtle"}) as response:
        assert response.status == 201
    async with http.get(server.repo_url()) as response:
        assert response.status == 200
        meta = await response.json()
    assert meta["id"] == "test/repo"
    assert meta["size"] == 1
    assert meta["graphs"] == ["http://example.org/g"]
    assert meta["endpoints"]["sparql"] == server.repo_url("/sparql")


async def test_put_existing_repository_answers_204(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.put(server.repo_url()) as response:
        assert response.status == 204


async def test_drop_repository_removes_it(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.delete(server.repo_url()) as response:
        assert response.status == 204
    async with http.get(server.repo_url("/sparql"), params={"query": "ASK {}"}) as response:
        assert response.status == 404
        problem = await response.json(content_type="application/problem+json")
    assert problem["status"] == 404 and "test/repo" in problem["detail"]


async def test_bad_repository_name_is_400(server: Running, http: aiohttp.ClientSession) -> None:
    for path in ("/health/x", "/anonymous/x"):  # reserved accounts that no route of their own takes
        async with http.put(server.url(path)) as response:
            assert response.status == 400
            problem = await response.json(content_type="application/problem+json")
        assert "reserved" in problem["detail"]
    async with http.put(server.url("/tasks/x")) as response:  # the monitor's route: it takes no PUT
        assert response.status == 405 and "PUT" not in response.headers["Allow"]
    async with http.put(server.url("/al%20ice/x")) as response:
        assert response.status == 400


async def test_unknown_path_is_404_problem(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url("/nothing/here/at/all/really")) as response:
        assert response.status == 404
        assert response.headers["Content-Type"] == "application/problem+json"


async def test_ready_with_redis_answering(server: Running, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url("/ready")) as response:
        assert response.status == 200
        assert (await response.json())["checks"] == {"redis": "ok", "workers": "ok", "store": "ok"}


async def test_ready_without_a_live_worker_is_503(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(worker=False)  # and no worker process either: nothing would run a task
    async with http.get(running.url("/ready")) as response:
        assert response.status == 503
        problem = await response.json(content_type="application/problem+json")
    assert problem["checks"] == {"redis": "ok", "workers": "no live worker is taking tasks", "store": "ok"}, problem


async def test_ready_without_redis_is_503(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    running = await start_server(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nobody listens there
    async with http.get(running.url("/ready")) as response:
        assert response.status == 503
        assert response.headers["Retry-After"]
        problem = await response.json(content_type="application/problem+json")
    assert problem["checks"]["redis"].startswith("unreachable")
    async with http.get(running.url("/health")) as response:
        assert response.status == 200
