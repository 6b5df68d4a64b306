"""A Python client of graphstore-async (asyncio, aiohttp; one session per client).

    async with Client("http://127.0.0.1:8080", token=TOKEN) as client:
        rows = (await client.query("alice/books", "SELECT * WHERE { ?s ?p ?o } LIMIT 5")).json()
        await client.put_graph("alice/books", Path("books.ttl"), "http://example.org/books")   # streamed
        op = await client.put_graph("alice/books", Path("big.nt"), respond_async=True)       # monitor mode
        await op.wait(timeout=600, progress=lambda doc: print(doc["progress"]["statements"]))
        answer = await op.result()                                    # the PUT's own answer: 201 or 204

Exceptions: see graphstore_async.client.errors.
"""

from graphstore_async.client.core import Client, Data, Graph, Notify, target_of
from graphstore_async.client.errors import (
    ClientError,
    HTTPError,
    OperationError,
    OperationFailed,
    OperationPending,
    OperationTimeout,
    TransportError,
)
from graphstore_async.client.operation import AsyncOperation
from graphstore_async.client.response import Response
from graphstore_async.targets import DATASET, Target
from graphstore_async.taskstatus import TaskStatus

__all__ = [
    "DATASET", "AsyncOperation", "Client", "ClientError", "Data", "Graph", "HTTPError", "Notify", "OperationError",
    "OperationFailed", "OperationPending", "OperationTimeout", "Response", "Target", "TaskStatus", "TransportError",
    "target_of",
]
