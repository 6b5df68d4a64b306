"""The client's view(): synchronous, monitor mode and notify mode, with bindings, limit and offset."""

from __future__ import annotations

from conftest import REPO, StartReceiver, StartServer

from graphstore_async.client import AsyncOperation, Client, Notify, Response

EX = "http://example.org/"
DATA = "".join(f'<{EX}s{i}> <{EX}p> {i} .\n' for i in range(5)).encode()
VIEW = f"SELECT ?s ?o WHERE {{ ?s <{EX}p> ?o }} ORDER BY ?o"


async def test_view_runs_in_each_mode_with_bindings(start_server: StartServer,
                                                    start_receiver: StartReceiver) -> None:
    receiver = await start_receiver()
    running = await start_server(notify_allow=(receiver.host_port,))
    async with Client(running.base) as client:
        await client.fetch("PUT", running.repo_url())
        await client.put_graph(REPO, DATA, content_type="text/turtle")
        stored = await client.fetch("PUT", running.repo_url("/byvalue"), data=VIEW,
                                    headers={"Content-Type": "application/sparql-query"})
        assert stored.status == 201

        now = await client.view(REPO, "byvalue", accept="text/csv", o="3")
        assert isinstance(now, Response)
        assert now.text().splitlines() == ["s,o", f"{EX}s3,3"]
        paged = await client.view(REPO, "byvalue", accept="text/csv", limit=2, offset=1)
        assert isinstance(paged, Response)
        assert paged.text().splitlines()[1:] == [f"{EX}s1,1", f"{EX}s2,2"]

        later = await client.view(REPO, "byvalue", accept="text/csv", respond_async=True, s=f"<{EX}s4>")
        assert isinstance(later, AsyncOperation)
        await later.wait(timeout=30, poll_interval=0.1)
        assert (await later.result()).text().splitlines() == ["s,o", f"{EX}s4,4"]

        notified = await client.view(REPO, "byvalue", notify=Notify(receiver.url(), content_type="text/csv"),
                                     o="1")
        assert isinstance(notified, AsyncOperation)
        await notified.wait(timeout=30, poll_interval=0.1)
        (note,) = await receiver.wait_for(1)
        assert note.headers["Content-Type"] == "text/csv"
        assert note.body.decode().splitlines() == ["s,o", f"{EX}s1,1"]
