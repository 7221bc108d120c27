"""Hand-written bindings of the bench service to our runtime, written as protoc-gen-connect_python
would write them (see docs/RUNTIME_CONTRACT.md), so the benchmark does not depend on the plugin."""

from __future__ import annotations

from bench.v1.bench_pb2 import DownloadRequest, Payload, UploadSummary

from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

SERVICE = "bench.v1.BenchService"
UNARY: MethodInfo[Payload, Payload] = MethodInfo(
    SERVICE, "Unary", Payload, Payload, StreamType.UNARY, IdempotencyLevel.IDEMPOTENCY_UNKNOWN
)
DOWNLOAD: MethodInfo[DownloadRequest, Payload] = MethodInfo(
    SERVICE, "Download", DownloadRequest, Payload, StreamType.SERVER_STREAM
)
UPLOAD: MethodInfo[Payload, UploadSummary] = MethodInfo(
    SERVICE, "Upload", Payload, UploadSummary, StreamType.CLIENT_STREAM
)
