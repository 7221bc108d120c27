import asyncio

from greet.v1 import greet_connect, greet_pb2


async def main() -> None:
    client = greet_connect.AsyncGreetServiceClient("http://127.0.0.1:8080")
    reply = await client.greet(greet_pb2.GreetRequest(name="Bazel"))
    print(reply.greeting)


asyncio.run(main())
