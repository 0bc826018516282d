"""CEL's ``matches()`` with a literal pattern, run on a pattern compiled once.

Why: cel-expr-python compiles the RE2 pattern of ``s.matches('...')`` again at every evaluation
(about 75 us of a 10-rule evaluation's 150 us in ``bench/bench_policy.py``), and it refuses a
function of our own named ``matches``. So, before compiling a rule, each ``X.matches('literal')``
whose pattern RE2 accepts is renamed to :data:`FUNCTION`, declared with a Python implementation
that keeps the compiled pattern (google-re2: the same RE2 library, the same options as
cel-cpp's ``matches``, so the same answers). The rename is CEL-aware: the source is split into
CEL's tokens (string literals of every form, comments), so a ``matches`` inside a string or a
comment is never touched; a non-literal pattern (``x.matches(p)``, ``x.matches('a' + b)``) and a
pattern RE2 refuses are left to the runtime's own ``matches`` (which reports the same error as
without the rewrite). The caller compiles the rule as written first (its errors and its type are
those of what the user wrote) and evaluates the rule as written again whenever the rewritten one
fails, for the runtime's own reason.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

__all__ = ["FUNCTION", "declaration", "rewrite"]

FUNCTION = "reconciler_re2_matches"  # declared only in the environment that runs rewritten rules

# CEL's lexical grammar (cel-spec, syntax.md): the tokens a rewrite must step over whole. Raw
# strings (r/R prefix) have no escapes and cannot hold their own quote; triple-quoted ones span
# lines; a b/B prefix makes any of them bytes (bytes have no matches()).
_TOKEN = re.compile(r'''
    (?P<space>\s+|//[^\n]*)
  | (?P<raw>[rR][bB]?|[bB][rR])(?:"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"[^"\n\r]*"|\'[^\'\n\r]*\')
  | (?P<cooked>[bB]?)(?:"""(?:\\[\s\S]|[^\\])*?"""|\'\'\'(?:\\[\s\S]|[^\\])*?\'\'\'
                      |"(?:\\.|[^"\\\n\r])*"|\'(?:\\.|[^\'\\\n\r])*\')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>.)
''', re.VERBOSE | re.DOTALL)


def _tokens(source: str) -> list[tuple[str, str, int]] | None:
    """(kind, text, offset) of each token but spaces and comments: kind ``string``, ``bytes``,
    ``ident`` or ``other`` (one character). None when the source does not split into CEL tokens
    (the compiler has refused it already; nothing is rewritten)."""
    out: list[tuple[str, str, int]] = []
    at = 0
    while at < len(source):
        found = _TOKEN.match(source, at)
        if found is None:
            return None
        kind = str(found.lastgroup)
        prefix = found.group("raw") if kind == "raw" else found.group("cooked") if kind == "cooked" else None
        if prefix is not None:
            kind = "bytes" if "b" in prefix.lower() else "string"
        if kind != "space":
            out.append((kind, found.group(), found.start()))
        at = found.end()
    return out


def rewrite(source: str, pattern_of: Callable[[str], str | None]) -> str | None:
    """``source`` with each ``.matches(<string literal>)`` renamed to :data:`FUNCTION`, or None
    when there is none to rename. ``pattern_of(literal)`` is the pattern a literal stands for when
    RE2 accepts it, else None (that call is left as written)."""
    tokens = _tokens(source)
    if tokens is None:
        return None
    spans: list[tuple[int, int]] = []
    for i in range(1, len(tokens) - 3):
        (_, dot, _), (kind, name, at), (_, open_, _), (literal_kind, literal, _), (_, close, _) = tokens[i - 1:i + 4]
        if (dot, kind, name, open_, literal_kind, close) == (".", "ident", "matches", "(", "string", ")") \
                and pattern_of(literal) is not None:
            spans.append((at, at + len(name)))
    if not spans:
        return None
    out, last = [], 0
    for start, end in spans:
        out += [source[last:start], FUNCTION]
        last = end
    return "".join([*out, source[last:]])


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    import re2

    return re2._re2.RE2(pattern.encode(), re2.Options())


def compiles(pattern: str) -> bool:
    """Whether RE2 (with the options cel-cpp's matches uses: RE2's defaults) accepts ``pattern``."""
    return bool(_compiled(pattern).ok())


def _matches(text: str, pattern: str) -> bool:
    """RE2's PartialMatch, as cel-cpp's matches: true when the pattern matches anywhere in text.
    Through google-re2's binding of the RE2 object (``re2._re2``): its public ``search`` costs
    16 us a call (it works out character offsets for a match object), this 4 us."""
    data = text.encode()
    found: bool = _compiled(pattern).Match(_UNANCHORED, data, 0, len(data))[0] != (-1, -1)
    return found


_UNANCHORED: Any = None


def declaration(cel: Any) -> Any:
    """The FunctionDecl of :data:`FUNCTION` (``string.FUNCTION(string) -> bool``) for ``cel``'s
    NewEnv; None when google-re2 is not installed, or its ``_re2`` binding (private) is not
    what this module expects (rules then run the runtime's matches)."""
    global _UNANCHORED
    try:
        import re2

        _UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED
    except (ImportError, AttributeError):  # not installed, or a release without that binding
        return None
    return cel.FunctionDecl(FUNCTION, [cel.Overload(f"{FUNCTION}_string", cel.Type.BOOL,
                                                    [cel.Type.STRING, cel.Type.STRING], True, _matches)])
