"""A fake collector for tests of the real netvigil-agent: a plain-text gRPC
server (Debian's python3-grpcio) speaking the Agent service, built from
agent.proto at run time (protoc --descriptor_set_out, no generated code in
the tree). It welcomes one agent with a plan the test gives, then sends what
the test asks and records everything the agent says."""

import os
import queue
import socket
import subprocess
import tempfile
import threading
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import nvtest

PROTO_DIR = os.path.join(nvtest.SOURCE_DIR, "proto")


def load_messages():
    """The netvigil.v1 message classes, by full name."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "agent.pb")
        subprocess.run(["protoc", "-I", PROTO_DIR, "-I", "/usr/include",
                        "--include_imports", "--descriptor_set_out=" + out,
                        os.path.join(PROTO_DIR, "netvigil", "v1", "agent.proto")],
                       check=True)
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    factory = message_factory.MessageFactory(pool)
    return factory.GetMessages([fd.name for fd in fds.file])


M = load_messages()


def msg(_type, **fields):
    return M["netvigil.v1." + _type](**fields)


def raw_command(command_bytes: bytes) -> bytes:
    """A CollectorMessage whose `command` (field 3) is these exact bytes: for
    commands this proto does not know."""
    n = len(command_bytes)
    length = b""
    while True:
        b = n & 0x7F
        n >>= 7
        length += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return b"\x1a" + length + command_bytes


class FakeCollector:
    """Serves one agent stream at a time on 127.0.0.1:port."""

    def __init__(self, port: int, welcome):
        self.port = port
        self.welcome = welcome  # a Welcome message (plan, iperf_auth, ...)
        self.outgoing = queue.Queue()  # CollectorMessage or raw bytes
        self.hellos, self.heartbeats, self.statuses, self.results = [], [], {}, {}
        self.lock = threading.Lock()
        self.connected = threading.Event()
        # The real collector takes messages up to 64 MiB: a sockets snapshot
        # of a busy host (50,000 sockets while a benchmark runs) is over
        # gRPC's default 4 MiB, and the fake must not refuse what it takes.
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                  options=[("grpc.max_receive_message_length", 64 << 20)])
        handler = grpc.method_handlers_generic_handler("netvigil.v1.Agent", {
            "Stream": grpc.stream_stream_rpc_method_handler(
                self._stream,
                request_deserializer=M["netvigil.v1.AgentMessage"].FromString,
                response_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString()),
        })
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(f"127.0.0.1:{port}")

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop(1).wait()

    def send(self, m):
        self.outgoing.put(m)

    def command(self, id: str, **cmd):
        """Sends Command(id, **cmd)."""
        self.send(msg("CollectorMessage", command=msg("Command", id=id, **cmd)))

    def _reader(self, requests, done):
        try:
            for m in requests:
                kind = m.WhichOneof("msg")
                with self.lock:
                    if kind == "heartbeat":
                        self.heartbeats.append(m.heartbeat)
                    elif kind == "command_status":
                        self.statuses[m.command_status.command_id] = m.command_status
                    elif kind == "result":
                        self.results.setdefault(m.result.command_id, []).append(m.result)
                        ack = msg("CollectorMessage", ack=msg("Ack", acked_through_seq=m.result.seq))
                        self.outgoing.put(ack)
        except grpc.RpcError:
            pass  # the stream ended (the agent or this server stopped)
        finally:
            done.set()

    def _stream(self, requests, context):
        first = next(requests)
        with self.lock:
            self.hellos.append(first.hello)
        w = msg("Welcome")
        w.CopyFrom(self.welcome)
        w.agent_name = first.hello.agent_name
        w.acked_through_seq = max(0, first.hello.next_seq - 1)
        yield msg("CollectorMessage", welcome=w)
        self.connected.set()
        done = threading.Event()
        threading.Thread(target=self._reader, args=(requests, done), daemon=True).start()
        while not done.is_set() and context.is_active():
            try:
                yield self.outgoing.get(timeout=0.2)
            except queue.Empty:
                pass

    def status(self, id: str, timeout: float = 15):
        return nvtest.wait_until(lambda: self.statuses.get(id), timeout, f"status of {id}")

    def result(self, id: str, timeout: float = 60):
        return nvtest.wait_until(lambda: (self.results.get(id) or [None])[0], timeout,
                                 f"result of {id}")

    def last_heartbeat(self):
        with self.lock:
            return self.heartbeats[-1] if self.heartbeats else None


# Kept for the tests that say fc.free_port().
free_port = nvtest.free_port


def duration(seconds: int):
    return M["google.protobuf.Duration"](seconds=seconds)
