"""Databricks SQL text -> tokens -> DuckDB SQL text, for the subset the double understands.

Translations (where DuckDB SQL differs from Databricks SQL in ways that matter here): backtick
identifiers become double-quoted ones, ``<=>`` becomes ``IS NOT DISTINCT FROM``, ``:name`` parameter markers become ``$name``,
``read_files('/Volumes/...', format => 'parquet')`` becomes ``read_parquet([...])`` over the volume's
local files, ``TIMESTAMP`` becomes ``TIMESTAMPTZ`` (Spark's TIMESTAMP is an instant) and
``TIMESTAMP_NTZ`` becomes ``TIMESTAMP``, and a three-part name's catalog becomes its DuckDB alias.
Anything the tokenizer does not recognise (double-quoted strings, which Spark reads as string literals,
or stray characters) is refused rather than passed through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<ident>`(?:[^`]|``)*`)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<dquote>")
  | (?P<op2><=>|=>|::|>=|<=|<>|!=|\|\|)
  | (?P<param>:[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>[=<>(),.*+\-/%;\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


class SqlError(Exception):
    """A statement the warehouse rejects: ``error_class`` as Databricks names such errors."""

    def __init__(self, error_class: str, message: str, error_code: str = "BAD_REQUEST"):
        super().__init__(f"[{error_class}] {message}")
        self.error_class = error_class
        self.error_code = error_code


@dataclass(frozen=True)
class Token:
    kind: str  # ident (backticked), word, string, number, param, op
    value: str  # identifiers and strings unescaped; words as written

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.value.upper() in words

    @property
    def is_name(self) -> bool:
        return self.kind in ("ident", "word")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SqlError("PARSE_SYNTAX_ERROR", f"Syntax error at or near {text[pos:pos + 20]!r}")
        kind, raw = m.lastgroup, m.group()
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "dquote":
            raise SqlError("DOUBLE_UNSUPPORTED", "double-quoted literals are not translated by the double")
        if kind == "ident":
            tokens.append(Token("ident", raw[1:-1].replace("``", "`")))
        elif kind == "string":
            body = re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), e.group(1)), raw[1:-1], flags=re.DOTALL)
            tokens.append(Token("string", body))
        elif kind == "param":
            tokens.append(Token("param", raw[1:]))
        else:
            tokens.append(Token("op" if kind in ("op", "op2") else kind, raw))
    if tokens and tokens[-1] == Token("op", ";"):
        tokens.pop()
    if Token("op", ";") in tokens:
        raise SqlError("PARSE_SYNTAX_ERROR", "one statement per request")
    return tokens


class Cursor:
    """A position in a token list with the few parsing moves the statement handlers need."""

    def __init__(self, tokens: list[Token]):
        self.tokens, self.pos = tokens, 0

    def peek(self, ahead: int = 0) -> Token | None:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise SqlError("PARSE_SYNTAX_ERROR", "Syntax error at end of input")
        self.pos += 1
        return token

    def accept(self, *words: str) -> bool:
        """Consume the keywords ``words`` if they come next."""
        for i, word in enumerate(words):
            token = self.peek(i)
            if token is None or not (token.is_word(word) or token == Token("op", word)):
                return False
        self.pos += len(words)
        return True

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise SqlError("PARSE_SYNTAX_ERROR", f"expected {' '.join(words)} near {self.peek()}")

    def name(self) -> str:
        token = self.next()
        if not token.is_name:
            raise SqlError("PARSE_SYNTAX_ERROR", f"expected a name, got {token.value!r}")
        return token.value

    def qualified(self, parts: int) -> tuple[str, ...]:
        names = [self.name()]
        while self.accept("."):
            names.append(self.name())
        if len(names) != parts:
            raise SqlError("DOUBLE_UNSUPPORTED", f"the double needs {parts}-part names, got {'.'.join(names)}")
        return tuple(names)

    def until(self, stop: Callable[[Token], bool]) -> list[Token]:
        """Tokens up to (not including) the first one at parenthesis depth 0 for which ``stop`` holds."""
        out, depth = [], 0
        while not self.at_end():
            token = self.peek()
            assert token is not None
            if depth == 0 and stop(token):
                break
            depth += (token == Token("op", "(")) - (token == Token("op", ")"))
            if depth < 0:
                break
            out.append(self.next())
        return out

    def parenthesized(self) -> list[Token]:
        self.expect("(")
        inner = self.until(lambda t: False)
        self.expect(")")
        return inner


def split_top_level(tokens: list[Token], separator: str = ",") -> list[list[Token]]:
    cursor, parts = Cursor(tokens), []
    while not cursor.at_end():
        parts.append(cursor.until(lambda t: t == Token("op", separator)))
        cursor.accept(separator)
    return parts


@dataclass
class Renderer:
    """Renders tokens as DuckDB SQL; ``catalog_alias`` and ``volume_files`` come from the engine."""

    catalog_alias: Callable[[str], str]
    volume_files: Callable[[str], list[str]]

    def render(self, tokens: list[Token]) -> tuple[str, set[str]]:
        """DuckDB text and the parameter names it uses."""
        out: list[str] = []
        params: set[str] = set()
        cursor = Cursor(tokens)
        while not cursor.at_end():
            token = cursor.next()
            prev = cursor.tokens[cursor.pos - 2] if cursor.pos >= 2 else None
            if token.is_name and prev != Token("op", ".") and self._three_part(cursor):
                schema, table = cursor.tokens[cursor.pos + 1].value, cursor.tokens[cursor.pos + 3].value
                cursor.pos += 4
                out.append(".".join(quote(p) for p in (self.catalog_alias(token.value), schema, table)))
            elif token.is_word("READ_FILES") and cursor.peek() == Token("op", "("):
                out.append(self._read_files(cursor.parenthesized()))
            elif token.kind == "ident":
                out.append(quote(token.value))
            elif token.kind == "string":
                out.append(literal(token.value))
            elif token.kind == "param":
                params.add(token.value)
                out.append("$" + token.value)
            elif token == Token("op", "<=>"):
                out.append("IS NOT DISTINCT FROM")
            elif token.is_word("TIMESTAMP_NTZ"):
                out.append("TIMESTAMP")
            elif token.is_word("TIMESTAMP"):
                out.append("TIMESTAMPTZ")
            else:
                out.append(token.value)
        return _join(out), params

    def _three_part(self, cursor: Cursor) -> bool:
        ahead = [cursor.peek(i) for i in range(5)]
        return (
            ahead[0] == Token("op", ".")
            and ahead[1] is not None
            and ahead[1].is_name
            and ahead[2] == Token("op", ".")
            and ahead[3] is not None
            and ahead[3].is_name
            and ahead[4] != Token("op", ".")
        )

    def _read_files(self, args: list[Token]) -> str:
        parts = split_top_level(args)
        if not parts or len(parts[0]) != 1 or parts[0][0].kind != "string":
            raise SqlError("DOUBLE_UNSUPPORTED", "read_files needs a literal path as its first argument")
        if [[(t.kind, t.value.lower()) for t in p] for p in parts[1:]] != [
            [("word", "format"), ("op", "=>"), ("string", "parquet")]
        ]:
            raise SqlError("DOUBLE_UNSUPPORTED", "the double translates read_files(path, format => 'parquet') only")
        files = self.volume_files(parts[0][0].value)
        return f"read_parquet([{', '.join(literal(f) for f in files)}], union_by_name = true)"


def _join(pieces: list[str]) -> str:
    text = ""
    for piece in pieces:
        glue = "" if not text or piece == "." or text.endswith(".") else " "
        text += glue + piece
    return text


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
