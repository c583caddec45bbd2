"""The few calls of libsrt (Haivision's SRT library, the one ffmpeg links here) that an SRT
listener needs, through ctypes: no Python package wraps libsrt's server side with its
listen callback, which is where a caller's `streamid` is seen and its handshake refused.

    lib = LibSrt.load()
    listener = lib.listen(host, port, latency_ms, on_caller)  # on_caller(sock, streamid,
                                                              #   peer) -> bool (accept?)
    sock = lib.accept(listener)  # a caller on_caller accepted
    data = lib.recv(sock)        # b"" once the caller is gone
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket
import struct
from collections.abc import Callable

SRT_ERROR = -1
SRTO_RCVSYN = 2
SRTO_TSBPDMODE = 22
SRTO_LATENCY = 23
SRTO_STREAMID = 46
SRTO_TRANSTYPE = 50
SRTT_LIVE = 0
# srt.h's SRT_REJC_PREDEFINED + 403 ("forbidden", the access control convention)
REJECT_FORBIDDEN = 1000 + 403
LIBRARIES = ("srt-gnutls", "srt-openssl", "srt")
# A live-mode SRT payload is at most 1456 bytes; the receive buffer takes a few.
RECV_BYTES = 1500

# int (*)(void* opaque, SRTSOCKET ns, int hsversion, const struct sockaddr*, const char*)
LISTEN_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_void_p, ctypes.c_char_p)
OnCaller = Callable[[int, str, str], bool]


class SrtError(RuntimeError):
    """libsrt refused a call; the message has its own words."""


def _peer(addr: int | None) -> str:
    """host:port of a struct sockaddr (IPv4 or IPv6), for logs."""
    if not addr:
        return "?"
    family = ctypes.c_ushort.from_address(addr).value
    if family == socket.AF_INET:
        raw = ctypes.string_at(addr, 16)
        port, ip = struct.unpack("!H4s", raw[2:8])
        return f"{ipaddress.IPv4Address(ip)}:{port}"
    if family == socket.AF_INET6:
        raw = ctypes.string_at(addr, 28)
        port = struct.unpack("!H", raw[2:4])[0]
        return f"[{ipaddress.IPv6Address(raw[8:24])}]:{port}"
    return "?"


class LibSrt:
    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        lib.srt_getlasterror_str.restype = ctypes.c_char_p
        lib.srt_create_socket.restype = ctypes.c_int
        lib.srt_setsockflag.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                        ctypes.c_int]
        lib.srt_bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        lib.srt_listen.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.srt_listen_callback.argtypes = [ctypes.c_int, LISTEN_CALLBACK, ctypes.c_void_p]
        lib.srt_accept.argtypes = [ctypes.c_int, ctypes.c_void_p,
                                   ctypes.POINTER(ctypes.c_int)]
        lib.srt_recvmsg.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.srt_close.argtypes = [ctypes.c_int]
        lib.srt_setrejectreason.argtypes = [ctypes.c_int, ctypes.c_int]
        self._callbacks: list[object] = []  # kept alive while libsrt may call them
        self._check(lib.srt_startup(), "srt_startup")

    @classmethod
    def load(cls) -> LibSrt:
        for name in LIBRARIES:
            path = ctypes.util.find_library(name)
            if path:
                return cls(ctypes.CDLL(path))
        for soname in ("libsrt-gnutls.so.1.5", "libsrt-openssl.so.1.5", "libsrt.so.1.5"):
            try:
                return cls(ctypes.CDLL(soname))
            except OSError:
                continue
        raise SrtError("libsrt is not installed (apt-get install libsrt1.5-gnutls, which "
                       "Debian's ffmpeg already depends on)")

    def _check(self, result: int, call: str) -> int:
        if result == SRT_ERROR:
            raise SrtError(f"{call}: {self.lib.srt_getlasterror_str().decode()}")
        return result

    def _set_int(self, sock: int, option: int, value: int) -> None:
        v = ctypes.c_int(value)
        self._check(self.lib.srt_setsockflag(sock, option, ctypes.byref(v), 4),
                    f"srt_setsockflag({option})")

    def listen(self, host: str, port: int, latency_ms: int, on_caller: OnCaller,
               backlog: int = 16) -> int:
        """A listening socket on host:port (live mode, blocking, `latency_ms` of
        retransmission room, no timed delivery); `on_caller` decides every handshake."""
        sock = self._check(self.lib.srt_create_socket(), "srt_create_socket")
        self._set_int(sock, SRTO_TRANSTYPE, SRTT_LIVE)
        self._set_int(sock, SRTO_RCVSYN, 1)
        self._set_int(sock, SRTO_LATENCY, latency_ms)
        # No timed delivery: what arrives is written to a file at once, and nothing is held
        # back for a play-out time, or dropped as too late (which a timed receiver does
        # with what it holds when the caller closes: the last `latency_ms` of the stream).
        self._set_int(sock, SRTO_TSBPDMODE, 0)
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        family, addr = info[0], info[4]
        if family == socket.AF_INET6:
            packed = struct.pack("!HHI16sI", 0, addr[1], 0,
                                 socket.inet_pton(family, addr[0]), 0)
        else:
            packed = struct.pack("!HH4s8x", 0, addr[1], socket.inet_aton(addr[0]))
        raw = ctypes.create_string_buffer(packed)
        ctypes.c_ushort.from_buffer(raw).value = family  # sa_family is host order
        self._check(self.lib.srt_bind(sock, raw, len(packed)), f"srt_bind({host}:{port})")

        def hook(_opaque: object, new_sock: int, _hs: int, peer: int | None,
                 streamid: bytes | None) -> int:
            try:
                ok = on_caller(new_sock, (streamid or b"").decode("utf-8", "replace"),
                               _peer(peer))
            except Exception:  # noqa: BLE001 - an exception must not cross into C
                ok = False
            if not ok:
                self.lib.srt_setrejectreason(new_sock, REJECT_FORBIDDEN)
                return -1
            return 0

        callback = LISTEN_CALLBACK(hook)
        self._callbacks.append(callback)
        self._check(self.lib.srt_listen_callback(sock, callback, None), "srt_listen_callback")
        self._check(self.lib.srt_listen(sock, backlog), "srt_listen")
        return sock

    def bound_port(self, sock: int) -> int:
        buf = ctypes.create_string_buffer(128)
        size = ctypes.c_int(128)
        self._check(self.lib.srt_getsockname(sock, buf, ctypes.byref(size)), "srt_getsockname")
        return struct.unpack("!H", buf.raw[2:4])[0]

    def accept(self, listener: int) -> int:
        """The next accepted caller's socket (blocks); raises SrtError once the listener is
        closed."""
        return self._check(self.lib.srt_accept(listener, None, None), "srt_accept")

    def recv(self, sock: int) -> bytes:
        """The next message of a caller, or b"" once it has gone (closed or broken)."""
        buf = ctypes.create_string_buffer(RECV_BYTES)
        n = self.lib.srt_recvmsg(sock, buf, RECV_BYTES)
        return b"" if n <= 0 else buf.raw[:n]

    def close(self, sock: int) -> None:
        self.lib.srt_close(sock)
