"""The checkpoint serializer of lbt-agents' runs: LangGraph's own, with every value zlib-compressed.

A TP thread's checkpoint holds its pending exams (each ``Send`` carries the TP, the pair's rationale
and the EP), and the exams of one pair are adjacent, so deflate's window sees each rationale repeat:
the checkpoint shrinks several-fold for a few milliseconds per TP.  It is LangGraph's
``EncryptedSerializer`` with a compressing "cipher", so values are typed ``msgpack+zlib``, values saved
without it (older runs) load as before, and LangGraph's msgpack allowlist still applies.
"""

from __future__ import annotations

import zlib

from langgraph.checkpoint.serde.base import CipherProtocol, SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer


class _Zlib(CipherProtocol):
    def __init__(self, level: int) -> None:
        self.level = level

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return "zlib", zlib.compress(plaintext, self.level)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        if ciphername != "zlib":
            raise ValueError(f"checkpoint value compressed with {ciphername!r}, which lbt-agents does not read")
        return zlib.decompress(ciphertext)


def compressed_serde(serde: SerializerProtocol | None = None, *, level: int = 6) -> EncryptedSerializer:
    """``serde`` (LangGraph's ``JsonPlusSerializer`` by default) with its bytes zlib-compressed."""
    return EncryptedSerializer(_Zlib(level), serde) if serde is not None else EncryptedSerializer(_Zlib(level))
