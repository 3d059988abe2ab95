"""TensorBoard event files written with a compiled CRC-32C.

tensorboard's writer computes the checksum of every record it writes in pure Python (TensorFlow's compiled one is
used only where TensorFlow is installed): about 80 ns a byte, 10 ms for the latent scatter's 120 kB PNG on this
project's CPU, on the writer's thread, which holds the GIL all along. google-crc32c computes the same checksum in
a few microseconds.
"""

from tensorboard.summary.writer import record_writer

try:
    import google_crc32c
except ImportError:  # a GPU machine's bare Python: tensorboard's own checksum is kept
    google_crc32c = None

MASK = 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C of a record, as tensorboard's ``masked_crc32c`` computes it (TFRecord's format)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | ((crc << 17) & MASK)) + 0xA282EAD8) & MASK


def use_compiled_checksums() -> None:
    """Makes tensorboard's record writer use :func:`masked_crc32c`; where google-crc32c is not installed (a GPU
    machine's bare Python), tensorboard's own is kept."""
    if google_crc32c is not None:
        record_writer.masked_crc32c = masked_crc32c
