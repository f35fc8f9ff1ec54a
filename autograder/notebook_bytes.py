"""A notebook file without its outputs, read as a stream: outputs never count against a size cap.

A student's notebook can be hundreds of megabytes because of what its cells printed or plotted
(a loop that prints every iteration, a figure per epoch). Grading never uses those outputs, so a
notebook over the grader's file cap is read once, as a stream, and the value of every
``"outputs"`` key of a cell is replaced by ``[]`` without being held in memory. What remains (the
cells' sources and metadata) must fit the usual cap.

``strip_outputs(stream, limit)`` returns the remaining JSON bytes or raises ``TooLarge``. It only
needs a notebook to be JSON: it does not validate the notebook (``rebuild.read_submitted`` does, on
the result). Strings are skipped with regular expressions, so a 300 MB output is read at a few
hundred MB/s, and a string longer than a read chunk (a megabyte-long base64 image) never has to
fit in memory while it is being skipped.
"""

import re

CHUNK = 1 << 20

# everything up to the next bracket that is not inside a string (complete strings included)
_SKIP_RUN = re.compile(rb'(?:"[^"\\]*(?:\\.[^"\\]*)*"|[^"\[\]{}])*', re.DOTALL)
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_LITERAL = re.compile(rb'[^ \t\r\n{}\[\]:,"]+')


def _string_end(buf, pos):
    """Index just past the closing quote of the string whose text starts at ``pos``; None when
    the string goes on past the end of ``buf``."""
    while True:
        quote = buf.find(b'"', pos)
        if quote < 0:
            return None
        before = quote - 1
        while before >= pos and buf[before] == 0x5C:  # a backslash: count the run
            before -= 1
        if (quote - 1 - before) % 2 == 0:  # not escaped
            return quote + 1
        pos = quote + 1


class TooLarge(ValueError):
    """The notebook without its outputs is still over the limit (``size`` bytes read so far)."""

    def __init__(self, size, limit):
        super().__init__(f"more than {limit} bytes without outputs")
        self.size, self.limit = size, limit


class NotJson(ValueError):
    """The stream is not a JSON document (cut off, or not JSON at all)."""


class _Reader:
    """A growing window on a binary stream: ``buf[pos:]`` is unread."""

    def __init__(self, stream, chunk):
        self.stream, self.chunk = stream, chunk
        self.buf, self.pos, self.eof = b"", 0, False

    def more(self, keep_from):
        """Read another chunk, dropping the bytes before ``keep_from``; False at the end."""
        if self.eof:
            return False
        data = self.stream.read(self.chunk)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[keep_from:] + data
        self.pos -= keep_from
        return True


def strip_outputs(stream, limit, chunk=CHUNK):
    """The notebook JSON read from the binary ``stream`` with every cell's outputs replaced by ``[]``.

    Inputs:
    - stream: a binary file object (``read(n)``), positioned at the notebook's first byte
    - limit: the most bytes the result may have; ``TooLarge`` is raised as soon as it is passed
    Returns the bytes of a JSON document (the notebook's structure is not checked).
    """
    reader = _Reader(stream, chunk)
    out, size = [], 0
    stack = []  # per open container: [kind "{" or "[", expecting a key (objects)]
    copied_from = 0  # start of the bytes of the buffer not yet in ``out``

    def flush(upto):
        nonlocal copied_from, size
        if upto > copied_from:
            out.append(reader.buf[copied_from:upto])
            size += upto - copied_from
            copied_from = upto
            if size > limit:
                raise TooLarge(size, limit)

    def need_more():
        """Read more, keeping the bytes not yet copied; False at the end of the stream."""
        nonlocal copied_from
        if reader.pos - copied_from > 4 * chunk:
            flush(reader.pos)
        if size + len(reader.buf) - copied_from > limit:
            raise TooLarge(size + len(reader.buf) - copied_from, limit)
        keep = copied_from
        if not reader.more(keep):
            return False
        copied_from -= keep
        return True

    reader.more(0)
    if reader.buf.startswith(b"\xef\xbb\xbf"):  # a byte order mark, as some editors write
        reader.pos = copied_from = 3
    done = False
    while not done:
        reader.pos = _WHITESPACE.match(reader.buf, reader.pos).end()
        if reader.pos >= len(reader.buf):
            if not need_more():
                break
            continue
        byte = reader.buf[reader.pos:reader.pos + 1]
        if byte == b'"':
            while True:
                end = _string_end(reader.buf, reader.pos + 1)
                if end is not None:
                    break
                if not need_more():
                    raise NotJson("the file ends inside a string")
            start, reader.pos = reader.pos, end
            token = reader.buf[start:end]
            if stack and stack[-1][0] == "{" and stack[-1][1]:
                stack[-1][1] = False
                if token == b'"outputs"' and len(stack) >= 2:
                    # the key stays, its value is skipped and written as []
                    if not _skip_colon(reader, need_more):
                        raise NotJson("the file ends after a key")
                    flush(reader.pos)
                    out.append(b"[]")
                    size += 2
                    _skip_value(reader)
                    copied_from = reader.pos
        elif byte in (b"{", b"["):
            stack.append([byte.decode(), byte == b"{"])
            reader.pos += 1
        elif byte in (b"}", b"]"):
            if not stack:
                raise NotJson("a closing bracket without an opening one")
            stack.pop()
            reader.pos += 1
            done = not stack
        elif byte == b",":
            if stack and stack[-1][0] == "{":
                stack[-1][1] = True
            reader.pos += 1
        elif byte == b":":
            reader.pos += 1
        else:
            match = _LITERAL.match(reader.buf, reader.pos)
            while match.end() == len(reader.buf) and need_more():
                match = _LITERAL.match(reader.buf, reader.pos)
            reader.pos = match.end()
            done = not stack
    if stack or not done:
        raise NotJson("the file ends before the notebook's closing bracket")
    flush(reader.pos)
    return b"".join(out)


def _skip_colon(reader, need_more):
    while True:
        reader.pos = _WHITESPACE.match(reader.buf, reader.pos).end()
        if reader.pos < len(reader.buf):
            if reader.buf[reader.pos:reader.pos + 1] != b":":
                raise NotJson("a key without a colon")
            reader.pos += 1
            return True
        if not need_more():
            return False


def _skip_value(reader):
    """Move past one JSON value without keeping it: the buffer is dropped as it is read."""
    while True:
        reader.pos = _WHITESPACE.match(reader.buf, reader.pos).end()
        if reader.pos < len(reader.buf):
            break
        if not reader.more(reader.pos):
            raise NotJson("the file ends before the outputs")
    first = reader.buf[reader.pos:reader.pos + 1]
    if first not in (b"[", b"{", b'"'):
        # a number, true, false or null: up to the next delimiter
        if _LITERAL.match(reader.buf, reader.pos) is None:
            raise NotJson("an unexpected character where a value belongs")
        while True:
            match = _LITERAL.match(reader.buf, reader.pos)
            if match is None:
                return
            reader.pos = match.end()
            if reader.pos < len(reader.buf) or not reader.more(reader.pos):
                return
    reader.pos += 1
    depth, in_string = (0, True) if first == b'"' else (1, False)
    while True:
        buf = reader.buf
        if in_string:
            end = _string_end(buf, reader.pos)
            if end is None:
                # all that is left is inside the string; a trailing run of backslashes waits for
                # the next chunk, which says what it escapes
                reader.pos = max(reader.pos, len(buf.rstrip(b"\\")))
                if not reader.more(reader.pos):
                    raise NotJson("the file ends inside a string")
                continue
            reader.pos, in_string = end, False
            if depth == 0:
                return
            continue
        reader.pos = _SKIP_RUN.match(buf, reader.pos).end()
        if reader.pos >= len(buf):
            if not reader.more(reader.pos):
                raise NotJson("the file ends inside the outputs")
            continue
        char = buf[reader.pos:reader.pos + 1]
        reader.pos += 1
        if char == b'"':
            in_string = True  # a string that goes on past this chunk
        elif char in (b"[", b"{"):
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return
