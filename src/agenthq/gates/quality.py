"""Catch an agent that hands back placeholder code instead of code.

Language models under pressure elide: they write `# ... existing code ...` where forty lines
used to be, replace a working body with `pass` or `todo!()`, or leave a file half-edited so it
no longer parses. `check_changes` looks at a diff (see `diffs.py`) and reports three kinds of
`Violation`:

`placeholder`
    An *added* comment that stands in for code (table `_PLACEHOLDERS`, one commented row per
    pattern), in any language's comment syntax; or a line of "code" that is a lone `...` or
    `... existing methods ...` and that the grammar cannot place. Rules that keep false
    positives down:
    - only comments that start their line count: a comment after code annotates that code;
    - a line the grammar puts inside a string literal never counts (tests quote placeholders);
    - in Python a lone `...` is Ellipsis (stubs, Protocols) and never counts; nor does a C
      variadic `...` or a JS spread `...options,`, which the grammar places;
    - strong rows ("... existing code ...", "rest of the implementation here", "your code
      here", "TODO: implement") count wherever they are added; weak rows ("// ...", a bare
      "TODO", "# unchanged", "# not implemented") read as documentation too, and count only
      when their change block removed real code: when they stand in for it;
    - a comment line that carries on the sentence of the comment above it is prose;
    - any TODO/FIXME note, whatever it says, counts when it stands in for removed code: its
      change block removed code and added only comments and trivial statements (`pass`,
      `return None`, `}`). A "TODO: handle X later" beside real code is a note.
`stub`
    A function whose body is now empty, `pass`/`...`/docstring-only, `raise
    NotImplementedError`, `throw new Error("not implemented")`, `todo!()`/`unimplemented!()`,
    `panic("not implemented")`... **where real code was removed from that same function** and
    not put back elsewhere in the change (moved code is a refactor). A silent stub (`pass`,
    empty) needs two lost lines, an explicit one (NotImplementedError, `todo!()`) one. A new
    function that is a stub (an abstract method, an interface default) is not flagged, nor are
    Python methods marked `@abstractmethod`/`@overload` or declared in a Protocol class.
    Python uses `ast` on the old and new text; other languages use tree-sitter. The old text is
    rebuilt from the new text and the diff (`diffs.old_text`). Functions are matched by their
    header line when it is unchanged, else by qualified name.
`syntax`
    A changed file that no longer parses: Python with `ast.parse`, other languages with the
    tree-sitter grammar for the extension (the innermost first ERROR or MISSING node). A file
    that did not parse before the change either (a grammar gap, a newer language version) is
    not blamed on the agent; nor are C/C++ errors beside preprocessor conditionals or macros,
    nor constructs a grammar is known to reject (`_GRAMMAR_GAPS`). Unknown extensions are
    skipped.

Grammars are imported lazily and Language/Parser/Query objects cached, one per language.
"""

from __future__ import annotations

import ast
import importlib
import re
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal

from agenthq.gates.diffs import FileChange, change_blocks, old_text, split_lines

if TYPE_CHECKING:
    from tree_sitter import Language, Node, Parser, Query, Tree

__all__ = ["Kind", "Violation", "check_changes", "language_for"]

Kind = Literal["placeholder", "stub", "syntax"]
ReadFile = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Violation:
    """One problem: `file` is workspace-relative, `line` is 1-based in the new text."""

    file: str
    line: int
    kind: Kind
    message: str


# --- languages -----------------------------------------------------------------------------------

# Grammar name → (module, function returning the language pointer).
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
}
_EXTENSIONS: dict[str, str] = {
    **dict.fromkeys((".py", ".pyi"), "python"),
    **dict.fromkeys((".js", ".mjs", ".cjs", ".jsx"), "javascript"),
    **dict.fromkeys((".ts", ".mts", ".cts"), "typescript"),
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    **dict.fromkeys((".c", ".h"), "c"),
    **dict.fromkeys((".cc", ".cpp", ".hpp", ".cxx", ".hh", ".hxx"), "cpp"),
    ".rb": "ruby",
}


# Line-comment openers by file type, for files without a grammar (and as a first filter).
def _words(text: str) -> list[str]:
    return text.split()


_HASH = ("#",)
_SLASH = ("//", "/*", "*", "{/*")
_STYLES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("python", "ruby"), _HASH),
    **dict.fromkeys(("javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp"), _SLASH),
    **dict.fromkeys(
        _words(".sh .bash .zsh .yaml .yml .toml .pl .pm .r .mk .cmake .tf .nim .ex .exs .cfg"),
        _HASH,
    ),
    **dict.fromkeys(_words(".conf .ps1 .jl .cr .coffee"), _HASH),
    **dict.fromkeys(
        _words(".cs .kt .kts .swift .scala .dart .groovy .gradle .proto .m .mm .zig .v .sol"),
        _SLASH,
    ),
    **dict.fromkeys(_words(".css .scss .less .sass"), _SLASH),
    ".php": (*_SLASH, "#"),
    **dict.fromkeys(_words(".vue .svelte .astro"), (*_SLASH, "<!--")),
    **dict.fromkeys(_words(".html .htm .xml .xhtml .svg .md .markdown .rst .txt"), ("<!--",)),
    **dict.fromkeys(_words(".sql .lua .hs .elm .ada"), ("--",)),
    **dict.fromkeys(_words(".lisp .el .clj .cljs .scm .ini"), (";", "#")),
    **dict.fromkeys(_words(".tex .erl .hrl"), ("%",)),
}
_GENERIC_STYLE = ("#", "//", "/*", "<!--")
_PROSE = frozenset(_words(".md .markdown .rst .txt .adoc"))  # only <!-- --> comments count there
_NAMED_FILES = {
    "makefile": ".mk",
    "dockerfile": ".sh",
    "gemfile": ".rb",
    "rakefile": ".rb",
    **dict.fromkeys(_words("readme license licence changelog changes authors notice"), ".txt"),
}
# Code files where a lone `...` line cannot be real code (Python is the exception).
_CODE_EXTENSIONS = frozenset(
    (set(_EXTENSIONS) - {".py", ".pyi"})
    | set(_words(".cs .kt .kts .swift .scala .dart .groovy .php .lua .zig .sol .m .mm"))
)


def _extension(path: str) -> str:
    name = PurePosixPath(path).name.lower()
    return _NAMED_FILES.get(name, PurePosixPath(name).suffix)


def language_for(path: str) -> str | None:
    """The tree-sitter grammar name for a path, by extension; None when we have none."""
    return _EXTENSIONS.get(_extension(path))


@cache
def _language(name: str) -> Language:
    """Load a grammar on first use: importing every grammar up front costs start-up time."""
    import tree_sitter

    module, function = _GRAMMARS[name]
    return tree_sitter.Language(getattr(importlib.import_module(module), function)())


@cache
def _parser(language: str) -> Parser:
    """One Parser per language per process."""
    import tree_sitter

    return tree_sitter.Parser(_language(language))


def _parse(language: str, text: str) -> Tree:
    return _parser(language).parse(text.encode("utf-8", "surrogatepass"))


# --- placeholders --------------------------------------------------------------------------------

_ELL = r"(?:\.{2,}|…)"
# What may precede the words: brackets and an ellipsis ("/* ... (unchanged) */").
_LEAD = rf"[\s(\[<{{]*+(?:{_ELL}\s*+)?[\s(\[<{{]*+"
_LEAD_ELL = rf"[\s(\[<{{]*+{_ELL}\s*+[\s(\[<{{]*+"  # the same, ellipsis required
# Words that may follow: "here", "unchanged", "as before", "for brevity", an ellipsis.
_FILLER_WORDS = (
    r"here|goes\s+here|is\s+here|below|above|follows|continues|"
    r"(?:(?:remains?|stays?|is|are|left|kept)\s+)?(?:the\s+same|unchanged|as\s+(?:before|is|it\s+was)"
    r"|intact|untouched|omitted|elided|same\s+as\s+before)|(?:not\s+)?shown|for\s+brevity|"
    rf"{_ELL}"
)
# Possessive quantifiers (`*+`, `++`): a tail of dots and brackets is matched one way only, so a
# line of a hundred dots cannot send the regex engine into exponential backtracking.
_TAIL = rf"(?:\s*+(?:{_FILLER_WORDS}|[.…)\]>:;,!\-]++))*+\s*+"
_TAIL_REQUIRED = rf"\s*+(?:{_FILLER_WORDS}){_TAIL}"  # punctuation alone is not a marker
# Things code is made of: "existing <thing>", "rest of the <thing>".
_THINGS = (
    r"(?:code|codes|implementation|implementations|impl|logic|body|bodies|content|contents|"
    r"methods?|functions?|fns?|imports?|tests?|fields?|properties|props|routes?|handlers?|"
    r"cases?|members?|helpers?|definitions?|declarations?|lines?|stuff|config(?:uration)?|"
    r"styles?|rules?|setup|components?|endpoints?|attributes?|class(?:es)?|variables?|"
    r"constants?|exports?|statements?|options?|commands?|steps?|entries|items?|elements?|"
    r"markup|html|file|module|script|program|struct|loop|page|template|section|sections|"
    r"part|parts|details|others?)"
)


def _phrase(core: str, *, marker: bool = True) -> re.Pattern[str]:
    """A whole-comment pattern: `core` must be introduced by an ellipsis or followed by filler
    ("here", "unchanged"...) when `marker` is set, so "# existing tests" as a section title
    does not count but "# ... existing tests ..." and "# existing tests unchanged" do."""
    if not marker:
        return re.compile(rf"^{_LEAD}(?:{core}){_TAIL}$")
    return re.compile(rf"^(?:{_LEAD_ELL}(?:{core}){_TAIL}|{_LEAD}(?:{core}){_TAIL_REQUIRED})$")


@dataclass(frozen=True)
class _Rule:
    """One way of eliding code. A `strong` rule fires wherever the comment is added; a weak
    one ("// ...", a bare "TODO", "# unchanged") also reads as documentation, so it fires only
    when its change block removed real code, i.e. when it stands in for that code."""

    pattern: re.Pattern[str]
    label: str
    strong: bool = True


# Patterns see the comment's text lower-cased, comment markers and surrounding whitespace
# removed, inner whitespace collapsed.
_PLACEHOLDERS: tuple[_Rule, ...] = (
    # "// ... rest of the code", "# ...existing code...", "/* ... (unchanged) */"
    _Rule(
        re.compile(
            rf"^{_LEAD_ELL}(?:the\s+|all\s+)?(?:rest|remaining|remainder|existing|unchanged|"
            rf"omitted|previous|original|keep|snip|everything|as\s+before|same\s+as|"
            rf"{_THINGS})\b.*$"
        ),
        "an elided-code comment",
    ),
    # "// rest of implementation here", "# the rest of the file unchanged", "rest of code ..."
    _Rule(
        _phrase(
            r"(?:the\s+)?rest\s+of\s+(?:the\s+|this\s+|that\s+|your\s+)?(?:[\w.-]+\s+){0,2}?"
            rf"{_THINGS}",
            marker=False,
        ),
        "a rest-of-the-code comment",
    ),
    # "# rest unchanged", "// the rest remains the same"
    _Rule(_phrase(r"(?:the\s+)?(?:rest|remainder)"), "a rest-of-the-code comment"),
    # "# (keep the rest as before)", "// keep existing code", "// leave everything else as is"
    _Rule(
        _phrase(
            r"(?:keep|leave|retain|preserve)\s+(?:the\s+|all\s+)?(?:rest|remainder|everything\s+"
            rf"else|(?:the\s+)?(?:existing|original|previous|other|remaining|current)\s+{_THINGS})"
            rf"(?:\s+of\s+(?:the\s+)?{_THINGS})?",
            marker=False,
        ),
        "a keep-the-rest comment",
    ),
    # "# existing code here", "// other methods unchanged", "# ... previous tests ..."
    _Rule(
        _phrase(
            r"(?:the\s+|your\s+|all\s+)?(?:existing|original|previous|old|other|remaining|"
            rf"unchanged|same|more|additional|prior)\s+(?:[\w.-]+\s+){{0,1}}?{_THINGS}"
        ),
        "an elided-code comment",
    ),
    # to-do markers that ask for the missing implementation (todo/fixme/xxx/tbd + "implement")
    _Rule(
        _phrase(
            r"(?:todo|fixme|xxx|tbd)\b[\s:!-]*(?:\([\w@.-]*\)[\s:!-]*)?(?:implement|finish|"
            r"complete|write|add|fill\s+in)(?:\s+(?:this|me|it|here|later|the\s+rest|the\s+"
            r"(?:actual\s+|real\s+)?(?:logic|implementation|body|function|method|code)|"
            r"(?:actual\s+|real\s+)?(?:logic|implementation|body|code)))?",
            marker=False,
        ),
        "a generic TODO",
    ),
    # "// implement me", "# implementation goes here", "/* fill in */"
    _Rule(
        _phrase(
            r"implement(?:ation)?\s+(?:me|this|here|goes\s+here|needed|pending|missing|later)|"
            r"fill\s+(?:this\s+)?in",
            marker=False,
        ),
        "a not-implemented comment",
    ),
    # "# your code here", "// add your implementation here", "/* code goes here */"
    _Rule(
        _phrase(
            r"(?:(?:add|put|insert|write|place)\s+)?(?:your\s+|the\s+|my\s+|some\s+|more\s+)?"
            r"(?:own\s+)?(?:code|implementation|logic|stuff|content)\s+(?:goes\s+)?here|"
            r"do\s+(?:something|stuff)(?:\s+here)?",
            marker=False,
        ),
        "a your-code-here comment",
    ),
    # "# details omitted for brevity", "// trimmed for space" (not "comments removed for ...")
    _Rule(
        re.compile(
            r"^(?!.*\b(?:comments?|docstrings?|docs)\b).*\b(?:omitted|elided|skipped|removed|"
            r"shortened|truncated|abbreviated|trimmed|not\s+shown)\s+(?:here\s+)?for\s+"
            r"(?:brevity|space|simplicity|clarity)\b"
        ),
        "an omitted-for-brevity comment",
    ),
    # weak: "// ...", "# …", "/* ... */", "<!-- ... -->", "[...]": nothing but an ellipsis
    _Rule(re.compile(rf"^[\s(\[<{{]*+{_ELL}[\s)\]>}}]*+$"), "an ellipsis comment", strong=False),
    # weak: "# ... etc.", "// ... and so on", "# ... more"
    _Rule(
        re.compile(rf"^{_LEAD_ELL}(?:etc|more|other|same|and\s+so\s+on|so\s+on)\b.*$"),
        "an elided-code comment",
        strong=False,
    ),
    # weak: "// unchanged", "# same as before", "/* no changes */", "<!-- snip -->", "# omitted"
    _Rule(
        _phrase(
            r"unchanged|no\s+changes?|same\s+as\s+(?:before|above|original|previous)|as\s+before|"
            r"<?snip(?:ped)?>?|(?:[\w-]+\s+){0,2}?(?:omitted|elided|truncated|snipped|not\s+shown)",
            marker=False,
        ),
        "an unchanged-code comment",
        strong=False,
    ),
    # weak: a bare "TODO" / "FIXME:" / "XXX" with nothing to say
    _Rule(_phrase(r"(?:todo|fixme|xxx|tbd)\b", marker=False), "a bare TODO", strong=False),
    # weak: "# not implemented", "// stub", "# placeholder"
    _Rule(
        _phrase(
            r"(?:not\s+(?:yet\s+)?|un)implemented(?:\s+yet)?|stub(?:bed)?(?:\s+(?:implementation|"
            r"for\s+now|out))?|placeholder(?:\s+[\w-]+)?",
            marker=False,
        ),
        "a not-implemented comment",
        strong=False,
    ),
)
# Any TODO-style note; a placeholder only when it replaces removed code (see module docstring).
_TODO = re.compile(r"^[\s(\[]*(?:todo|fixme|xxx|tbd|hack)\b")
# A line of code that is an ellipsis and elision words ("... existing methods ..."). A space
# after the ellipsis, or a closing one, and no commas or brackets tell it from a spread or rest
# argument such as `...options,`.
_BARE_ELISION = re.compile(rf"^(?:\.{{3,}}|…)(?:\s|.*{_ELL}$)[^,;=\[\]{{}}]*$")
_LONE_ELLIPSIS = re.compile(r"^\s*(?:\.{3}|…)\s*$")
_OPENER = re.compile(r"^\s*\{?\s*(?:<!--|/\*+!?|//+[!/]?|#+!?|--+|;+|%+|\*+)")
_CLOSER = re.compile(r"(?:-->|\*+/\s*\}?)\s*$")
# Added statements that do not count as rewriting a block: a TODO beside them still stands in.
_TRIVIAL = re.compile(
    r"^(?:pass|\.\.\.|[{}()\[\];,]+|end|else:?|break;?|continue;?|return(?:\s+(?:none|null|nil|"
    r"undefined|0|false|true|\[\]|\{\}|\"\"|''|ok\(\(\)\)|nullptr|default))?;?)$"
)


def _normalise(comment: str) -> str:
    """`  // ... rest of the code */` → `... rest of the code`: markers gone, one-spaced."""
    text = _CLOSER.sub("", _OPENER.sub("", comment, count=1))
    return " ".join(text.split()).lower()


def _placeholder_rule(comment: str) -> _Rule | None:
    """The first rule a comment's text matches; long comments are prose and match none."""
    text = _normalise(comment)
    if len(text) > 120:  # prose, not a placeholder
        return None
    return next((rule for rule in _PLACEHOLDERS if rule.pattern.search(text)), None)


# --- one file --------------------------------------------------------------------------------------

Point = tuple[int, int]  # (row, byte column), 0-based, as tree-sitter counts


@dataclass(frozen=True)
class _Regions:
    """Disjoint, sorted text ranges (all comments, all strings, all ERROR nodes of a file), so a
    point lookup is a binary search. Walking a node's parents from Python instead is quadratic
    on the deep trees that broken files produce (tree-sitter finds a parent from the root)."""

    starts: tuple[Point, ...] = ()
    ends: tuple[Point, ...] = ()

    @staticmethod
    def of(nodes: Sequence[Node]) -> _Regions:
        merged: list[list[Point]] = []
        for start, end in sorted(((*n.start_point,), (*n.end_point,)) for n in nodes):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return _Regions(tuple(m[0] for m in merged), tuple(m[1] for m in merged))

    def __contains__(self, point: Point) -> bool:
        index = bisect_right(self.starts, point) - 1
        return index >= 0 and point < self.ends[index]


@dataclass(frozen=True)
class _Map:
    comments: _Regions
    strings: _Regions
    errors: _Regions


@cache
def _map_query(language: str) -> Query:
    """One query for every comment, string-like and ERROR node. Node kinds are read from the
    grammar itself (`line_comment`, `template_string`, `heredoc_body`...)."""
    import tree_sitter

    lang = _language(language)
    kinds = {lang.node_kind_for_id(i) for i in range(lang.node_kind_count)}
    named = sorted(
        k
        for k in kinds
        if k and lang.id_for_node_kind(k, True) is not None and not k.startswith("_")
    )
    comments = [k for k in named if "comment" in k]
    strings = [k for k in named if "string" in k or "heredoc" in k or k == "jsx_text"]
    patterns = ["(ERROR) @error"]
    for capture, group in (("comment", comments), ("string", strings)):
        if group:
            patterns.append("[" + " ".join(f"({k})" for k in group) + f"] @{capture}")
    return tree_sitter.Query(lang, "\n".join(patterns))


@dataclass
class _Source:
    """A changed file and what we know of it: its text now, its grammar tree, its text before."""

    change: FileChange
    new_text: str | None

    @cached_property
    def ext(self) -> str:
        return _extension(self.change.path)

    @cached_property
    def language(self) -> str | None:
        return _EXTENSIONS.get(self.ext)

    @cached_property
    def style(self) -> tuple[str, ...]:
        return _STYLES.get(self.language or self.ext, _GENERIC_STYLE)

    @cached_property
    def consistent(self) -> bool:
        """The text now carries the diff's added lines where the diff says: line numbers and
        tree positions can be trusted."""
        if self.new_text is None:
            return False
        lines = split_lines(self.new_text)
        return all(no <= len(lines) and lines[no - 1] == text for no, text in self.change.added)

    @cached_property
    def tree(self) -> Tree | None:
        if self.new_text is None or self.language is None:
            return None
        return _parse(self.language, self.new_text)

    @cached_property
    def map(self) -> _Map | None:
        """Where the comments, strings and errors are; None without a trusted tree."""
        if self.tree is None or self.language is None or not self.consistent:
            return None
        import tree_sitter

        found = tree_sitter.QueryCursor(_map_query(self.language)).captures(self.tree.root_node)
        return _Map(*(_Regions.of(found.get(k, [])) for k in ("comment", "string", "error")))

    @cached_property
    def lines(self) -> dict[int, str]:
        """Line number → text: the whole file when trusted, else just the added lines."""
        if self.new_text is not None and self.consistent:
            return dict(enumerate(split_lines(self.new_text), 1))
        return dict(self.change.added)

    def line(self, line_no: int) -> str | None:
        return self.lines.get(line_no)

    @cached_property
    def old(self) -> str | None:
        """The text before the change; None when it cannot be rebuilt faithfully."""
        if self.new_text is None or not self.consistent:
            return None
        return old_text(self.change, self.new_text)

    @cached_property
    def stand_ins(self) -> dict[int, int]:
        """Added line → lines of code its change block removed, for blocks that removed code."""
        result: dict[int, int] = {}
        for block in change_blocks(self.change):
            lost = sum(1 for _, text in block.removed if _is_code(self, text))
            if lost:
                result.update((no, lost) for no, _ in block.added)
        return result


def _point(line_no: int, text: str, column: int) -> Point:
    return line_no - 1, len(text[:column].encode("utf-8", "surrogatepass"))


def _comment_on(src: _Source, line_no: int, text: str) -> str | None:
    """The comment that begins this line (after indentation), or None. Comments after code do
    not count: they annotate that code. A grammar, when we have one, has the last word, so a
    `#` or `//` inside a string literal is not a comment."""
    stripped = text.lstrip()
    if not stripped:
        return None
    if "<!--" in src.style and (at := text.find("<!--")) >= 0 and src.tree is None:
        return text[at:]
    if src.ext in _PROSE:
        return None
    column = len(text) - len(stripped)
    if stripped.startswith("{"):  # JSX: {/* ... */}
        column += len(stripped) - len(stripped[1:].lstrip())
    if src.map is not None:
        return stripped if _point(line_no, text, column) in src.map.comments else None
    if any(stripped.startswith(marker) for marker in src.style):
        return stripped
    return None


def _bare_placeholder(src: _Source, line_no: int, text: str) -> str | None:
    """A placeholder written as code: a lone `...`, or `... existing methods ...`, that the
    grammar cannot place (so never a C variadic `...` or a JS spread), outside any string. A
    lone `...` is never one in Python, where it is Ellipsis."""
    normal = _normalise(text)
    if src.map is None and src.ext not in _CODE_EXTENSIONS:
        return None  # without a grammar, only where `...` can never be code
    if _LONE_ELLIPSIS.match(text):
        label = "a lone ellipsis"
        if src.language == "python":
            return None
    elif _BARE_ELISION.match(normal) and _PLACEHOLDERS[0].pattern.match(normal):
        label = "an elided-code line"
    else:
        return None
    if src.ext in _PROSE:
        return None
    if src.map is not None:
        point = _point(line_no, text, len(text) - len(text.lstrip()))
        if point in src.map.strings or point not in src.map.errors:
            return None
    return label


def _continues_prose(src: _Source, line_no: int) -> bool:
    """This comment line carries on the sentence of the comment line above it ("... to be
    processed by the / rest of the code."): documentation, whatever its words."""
    above = src.line(line_no - 1)
    comment = _comment_on(src, line_no - 1, above) if above is not None else None
    if comment is None:
        return False
    text = _normalise(comment)
    return bool(text) and text[-1] not in ".:;!?)" and _placeholder_rule(comment) is None


def _line_placeholder(src: _Source, line_no: int, text: str) -> str | None:
    """What kind of placeholder an added line is, if any (see the module docstring)."""
    comment = _comment_on(src, line_no, text)
    if comment is None:
        return _bare_placeholder(src, line_no, text)
    rule = _placeholder_rule(comment)
    if rule is None or not (rule.strong or line_no in src.stand_ins):
        return None
    if not _normalise(comment).startswith(("..", "…")) and _continues_prose(src, line_no):
        return None
    return rule.label


def _snippet(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_code(src: _Source, text: str) -> bool:
    """A line that does something: not blank, not a comment, not a lone brace or `pass`."""
    stripped = text.strip()
    if not stripped or any(stripped.startswith(marker) for marker in src.style):
        return False
    return _TRIVIAL.match(stripped.lower()) is None


def _placeholders(src: _Source) -> Iterator[Violation]:
    """Placeholder lines among a file's added lines, then TODO notes standing in for code."""
    flagged: set[int] = set()
    for line_no, text in src.change.added:
        label = _line_placeholder(src, line_no, text)
        if label is not None:
            flagged.add(line_no)
            message = f"{label} where code belongs: {_snippet(text)!r}"
            yield Violation(src.change.path, line_no, "placeholder", message)
    yield from _todo_standins(src, flagged)


def _todo_standins(src: _Source, flagged: set[int]) -> Iterator[Violation]:
    """TODO notes that replace removed code: the block removed code and added only comments
    and trivial statements."""
    for block in change_blocks(src.change):
        lost = sum(1 for _, text in block.removed if _is_code(src, text))
        if not lost or any(_is_code(src, text) for _, text in block.added):
            continue
        for line_no, text in block.added:
            comment = _comment_on(src, line_no, text)
            if line_no in flagged or comment is None or not _TODO.match(_normalise(comment)):
                continue
            yield Violation(
                src.change.path,
                line_no,
                "placeholder",
                f"a TODO replaces {lost} removed line(s) of code: {_snippet(text)!r}",
            )


# --- stubs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Func:
    """A function as the stub rule sees it. Lines are 1-based; `stub` describes a placeholder
    body (None when the body does real work); `exempt` marks declarations meant to be bodiless."""

    key: str  # qualified name: enclosing classes/functions and its own name
    kind: str  # node type, so a position match does not pair a lambda with a method
    start: int  # header line
    body_start: int
    end: int
    stub: str | None
    exempt: bool = False
    line: int = 0
    explicit: bool = False  # the stub says so (raise NotImplementedError, todo!()), not just `pass`  # where to report a stub: its first statement (the body's start if empty)


# Statements that say "not written yet", in every language we parse with tree-sitter.
_STUB_STATEMENT = re.compile(
    r"^(?:throw|raise|fail|panic!?|abort|return\s+err)\b.*?(?:notimplemented|not[\s_-]*"
    r"(?:yet[\s_-]*)?implemented|unimplemented|implement[\s_-]*me|\btodo\b)"
    r"|^(?:todo|unimplemented)!\s*[(\[{]"
    r"|^throw\s+new\s+(?:java\.lang\.)?UnsupportedOperationException\b"
    r"|^(?:raise|fail)\s+NotImplementedError\b"
    r"|^assert\s*\(.*not[\s_-]*(?:yet[\s_-]*)?implemented",
    re.IGNORECASE | re.DOTALL,
)
# Function-like nodes per grammar.
_TS_FUNCTIONS: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        ("javascript", "typescript", "tsx"),
        frozenset(
            _words(
                "function_declaration function_expression arrow_function method_definition "
                "generator_function_declaration generator_function"
            )
        ),
    ),
    "go": frozenset({"function_declaration", "method_declaration", "func_literal"}),
    "rust": frozenset({"function_item", "closure_expression"}),
    "java": frozenset({"method_declaration", "constructor_declaration", "lambda_expression"}),
    "c": frozenset({"function_definition"}),
    "cpp": frozenset({"function_definition", "lambda_expression"}),
    "ruby": frozenset({"method", "singleton_method"}),
}
_PY_EXEMPT_DECORATORS = frozenset({"abstractmethod", "abstractproperty", "overload"})


def _parse_python(text: str) -> ast.Module | SyntaxError:
    """`ast.parse`, quietly: invalid escape sequences warn, and warnings may be errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(text)
        except SyntaxError as exc:
            return exc
        except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
            return SyntaxError(str(exc) or type(exc).__name__)


def _py_stub_statement(node: ast.stmt) -> bool:
    if isinstance(node, ast.Pass):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return node.value.value is Ellipsis or isinstance(node.value.value, str)
    if isinstance(node, ast.Raise) and node.exc is not None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        name = exc.id if isinstance(exc, ast.Name) else getattr(exc, "attr", "")
        return name == "NotImplementedError"
    return False


def _py_stub(body: list[ast.stmt]) -> str | None:
    """How a Python body is a placeholder ('pass', '...', 'raise NotImplementedError', a
    docstring alone), or None when it does real work."""
    if not all(_py_stub_statement(node) for node in body):
        return None
    shown = [ast.unparse(node) for node in body if not _is_docstring(node)]
    return " / ".join(shown) if shown else "a docstring only"


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def _is_protocol(node: ast.ClassDef) -> bool:
    return any(_decorator_name(base) == "Protocol" for base in node.bases)


def _py_functions(text: str) -> list[_Func] | None:
    """Every function in Python source, by qualified name; None when it does not parse."""
    module = _parse_python(text)
    if isinstance(module, SyntaxError):
        return None
    found: list[_Func] = []
    stack: list[tuple[ast.AST, str, bool]] = [(module, "", False)]
    while stack:
        node, prefix, in_protocol = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                stack.append((child, f"{prefix}{child.name}.", _is_protocol(child)))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append(_py_func(child, prefix, in_protocol))
                stack.append((child, f"{prefix}{child.name}.", False))
            else:
                stack.append((child, prefix, in_protocol))
    return found


def _py_func(node: ast.FunctionDef | ast.AsyncFunctionDef, prefix: str, protocol: bool) -> _Func:
    """A Python function; declarations meant to be bodiless (abstract, overload, Protocol
    members) are exempt from the stub rule."""
    decorators = {_decorator_name(d) for d in node.decorator_list}
    return _Func(
        key=prefix + node.name,
        kind="def",
        start=node.lineno,
        body_start=node.body[0].lineno,
        end=node.end_lineno or node.lineno,
        stub=_py_stub(node.body),
        line=node.body[0].lineno,
        exempt=protocol or bool(decorators & _PY_EXEMPT_DECORATORS),
        explicit=any(isinstance(statement, ast.Raise) for statement in node.body),
    )


def _node_text(node: Node | None) -> str:
    raw = node.text if node is not None else None
    return raw.decode("utf-8", "replace") if raw is not None else ""


# Scopes that qualify a function's name; the value is the field holding the scope's name.
_TS_SCOPES: dict[str, str] = {
    **dict.fromkeys(
        _words(
            "class_declaration abstract_class_declaration interface_declaration enum_declaration "
            "record_declaration class module namespace_definition class_specifier struct_specifier "
            "trait_item mod_item internal_module"
        ),
        "name",
    ),
    "impl_item": "type",
}


@cache
def _function_query(language: str) -> Query:
    """Functions and the scopes around them, in one query (kinds the grammar lacks dropped)."""
    import tree_sitter

    lang = _language(language)

    def group(kinds: Iterable[str], capture: str) -> str:
        present = [k for k in sorted(kinds) if lang.id_for_node_kind(k, True) is not None]
        return "[" + " ".join(f"({k})" for k in present) + f"] @{capture}" if present else ""

    functions = group(_TS_FUNCTIONS[language], "function")
    return tree_sitter.Query(lang, f"{functions}\n{group(_TS_SCOPES, 'scope')}")


def _ts_functions(language: str, tree: Tree) -> list[_Func]:
    """Every function with its qualified name. Nesting comes from byte ranges (a sweep with a
    stack) rather than from walking parents, which is slow on deep trees."""
    import tree_sitter

    if language not in _TS_FUNCTIONS:
        return []
    found = tree_sitter.QueryCursor(_function_query(language)).captures(tree.root_node)
    tagged = [(n, True) for n in found.get("function", [])]
    tagged += [(n, False) for n in found.get("scope", [])]
    tagged.sort(key=lambda item: (item[0].start_byte, -item[0].end_byte))
    stack: list[tuple[int, str]] = []  # (end byte, name) of the enclosing functions and scopes
    functions: list[_Func] = []
    for node, is_function in tagged:
        while stack and stack[-1][0] <= node.start_byte:
            stack.pop()
        if is_function:
            name = _ts_name(node)
            functions.append(_ts_func(node, ".".join([*(s for _, s in stack), name])))
        else:
            name = _node_text(node.child_by_field_name(_TS_SCOPES[node.type]))
        stack.append((node.end_byte, name))
    return functions


def _ts_func(node: Node, key: str) -> _Func:
    """A tree-sitter function: a stub when its body has no statements, or only statements that
    say "not implemented" (`_STUB_STATEMENT`)."""
    body = node.child_by_field_name("body")
    statements = _ts_statements(body) if body is not None else []
    stub: str | None = None
    if not statements:
        stub = "an empty body"
    elif all(_STUB_STATEMENT.match(_node_text(s).strip()) for s in statements):
        stub = _snippet(_node_text(statements[0]), 40)
    return _Func(
        key=key,
        kind=node.type,
        start=node.start_point[0] + 1,
        body_start=(body or node).start_point[0] + 1,
        end=node.end_point[0] + 1,
        stub=stub,
        line=(statements[0] if statements else body or node).start_point[0] + 1,
        explicit=bool(statements),
    )


# Node types that hold a list of statements (Go nests them once more in `statement_list`).
_BLOCKS = frozenset(
    _words("statement_block block compound_statement body_statement constructor_body")
)


def _ts_statements(body: Node) -> list[Node]:
    """A body's statements, comments left out. A body that is an expression (`x => x + 1`)
    is its own single statement."""
    if body.type not in _BLOCKS:
        return [body]
    statements: list[Node] = []
    for child in body.named_children:
        if child.type == "statement_list":
            statements.extend(c for c in child.named_children if "comment" not in c.type)
        elif "comment" not in child.type:
            statements.append(child)
    return statements


def _ts_name(node: Node) -> str:
    """A function's own name; C/C++ keep it inside nested declarators, anonymous functions
    borrow the name they are assigned to."""
    name = node.child_by_field_name("name")
    declarator = node.child_by_field_name("declarator")
    while name is None and declarator is not None:
        inner = declarator.child_by_field_name("declarator")
        if inner is None:
            name = declarator
        declarator = inner
    parent = node.parent if name is None else None
    for field in ("name", "key", "left", "property"):
        if name is not None or parent is None:
            break
        name = parent.child_by_field_name(field)
    text = _node_text(name) if name is not None else "<anonymous>"
    receiver = node.child_by_field_name("receiver")  # Go: func (s *Server) Run()
    if receiver is not None and receiver.named_children:
        kind = receiver.named_children[0].child_by_field_name("type")
        text = f"{_node_text(kind).lstrip('*')}.{text}"
    return text


def _functions(language: str, text: str, tree: Tree | None = None) -> list[_Func] | None:
    """Functions of a source text; Python through `ast` (exact), others through tree-sitter."""
    if language == "python":
        return _py_functions(text)
    return _ts_functions(language, tree if tree is not None else _parse(language, text))


def _common_lines(src: _Source, old: str) -> dict[int, int]:
    """New line number → old line number, for every line the change left alone."""
    added = {no for no, _ in src.change.added}
    removed = {no for no, _ in src.change.removed}
    new_count = len(split_lines(src.new_text or ""))
    new_common = (no for no in range(1, new_count + 1) if no not in added)
    old_common = (no for no in range(1, len(split_lines(old)) + 1) if no not in removed)
    return dict(zip(new_common, old_common, strict=False))


def _stubs(src: _Source, added_anywhere: frozenset[str]) -> Iterator[Violation]:
    """New stub bodies in functions that lost real code in this change (see `_lost`)."""
    old = src.old
    if src.language is None or src.new_text is None or old is None or not src.change.removed:
        return
    new_funcs = _functions(src.language, src.new_text, src.tree)
    old_funcs = _functions(src.language, old) if new_funcs else None
    if not new_funcs or not old_funcs:
        return
    by_start = {(f.kind, f.start): f for f in old_funcs}
    by_key: dict[str, list[_Func]] = {}
    for func in old_funcs:
        by_key.setdefault(func.key, []).append(func)
    common = _common_lines(src, old)
    for func in new_funcs:
        if func.stub is None or func.exempt:
            continue
        same_place = by_start.get((func.kind, common.get(func.start, 0)))
        candidates = [same_place] if same_place else _by_name(by_key, func.key)
        lost = max((_lost(src, before, func, added_anywhere) for before in candidates), default=0)
        if lost:
            yield Violation(
                src.change.path,
                func.line or func.body_start,
                "stub",
                f"{func.key}: body replaced by a stub ({func.stub}) after {lost} line(s) of "
                "code were removed from it",
            )


def _by_name(by_key: dict[str, list[_Func]], key: str) -> list[_Func]:
    """Old functions of the same qualified name; anonymous ones are too ambiguous to pair."""
    return [] if "<anonymous>" in key else by_key.get(key, [])


def _lost(src: _Source, before: _Func, after: _Func, added_anywhere: frozenset[str]) -> int:
    """Lines of real code the change took out of `before` and did not put back elsewhere, when
    that is enough to call `after` a gutted body; else 0. Code that reappears among the added
    lines (of any file) was moved, a refactor. An explicit stub (NotImplementedError, todo!())
    needs one lost line; a silent one (`pass`, `...`, empty) needs two, since emptying a
    one-line body (a test callback, a hook made a no-op) is an ordinary edit."""
    if before.stub is not None:
        return 0
    lost = [
        text.strip()
        for no, text in src.change.removed
        if before.body_start <= no <= before.end and _is_code(src, text)
    ]
    moved = sum(1 for text in lost if text in added_anywhere)
    if not lost or moved * 2 >= len(lost):
        return 0
    return len(lost) if len(lost) >= (1 if after.explicit else 2) else 0


# --- syntax ----------------------------------------------------------------------------------------


def _first_error(root: Node) -> Node | None:
    """The innermost first ERROR or MISSING node: descend into the first damaged child until
    none is left. An outer ERROR can start far above the trouble (at line 1, for a whole file
    the parser gave up on); the innermost one is where it got stuck."""
    if not root.has_error:
        return None
    node = root
    while True:
        damaged = next((c for c in node.children if c.has_error or c.is_missing), None)
        if damaged is None:
            return node
        node = damaged


# Constructs a grammar rejects though the language accepted them (not the agent's doing).
_GRAMMAR_GAPS: dict[str, re.Pattern[str]] = {
    "rust": re.compile(r"^\s*try!"),  # Rust 2015's try! macro
}


# Conditional compilation: tree-sitter parses C as if every branch were compiled, so code like
# `#ifdef __cplusplus } #endif` or a directive inside an initializer reads as an error.
_CONDITIONAL = re.compile(r"^\s*#\s*(?:if|ifdef|ifndef|elif|else|endif|define)\b")


# Macro-like names: ALL_CAPS, Prefix_MACRO, varargs and compiler keywords. A macro expanding to
# an attribute or taking a type argument (`CPy_NOINLINE void f()`, `va_arg(ap, T *)`) is not
# C until the preprocessor has run.
_MACRO_LIKE = re.compile(r"\b(?:[A-Z][A-Z0-9_]{2,}|\w+_[A-Z][A-Z0-9_]+|va_\w+|offsetof|__\w+)\b")


def _preprocessor_gap(text: str, node: Node) -> bool:
    """tree-sitter reads C and C++ before the preprocessor. An error that touches a conditional
    directive (two lines either side), or any error but a missing `}` beside a macro-like name,
    is one the grammar cannot judge, so we do not either."""
    if node.type.startswith("#"):  # a MISSING `#endif`
        return True
    lines = split_lines(text)
    first, last = node.start_point[0] - 2, node.end_point[0] + 2
    if any(_CONDITIONAL.match(line) for line in lines[max(0, first) : last + 1]):
        return True
    row = node.start_point[0]
    return node.type != "}" and any(
        _MACRO_LIKE.search(line) for line in lines[max(0, row - 1) : row + 2]
    )


def _python_problem(text: str, tree: Tree | None) -> tuple[int, str] | None:
    """`ast.parse` knows only the running Python's grammar (3.11 here), so a project on a newer
    Python (`def f[T]()`, `type X = ...`) would read as broken. tree-sitter-python knows the
    newer syntax: an error only `ast` sees is believed only when it is an IndentationError,
    which no version accepts (and which tree-sitter does not check)."""
    result = _parse_python(text)
    if not isinstance(result, SyntaxError):
        return None
    if not isinstance(result, IndentationError):
        tree = tree if tree is not None else _parse("python", text)
        if not tree.root_node.has_error:
            return None
    return result.lineno or 1, f"does not parse: {result.msg}"


def _parse_problem(language: str, text: str, tree: Tree | None = None) -> tuple[int, str] | None:
    """(line, message) of the first syntax error, or None when the text parses."""
    if language == "python":
        return _python_problem(text, tree)
    tree = tree if tree is not None else _parse(language, text)
    if not tree.root_node.has_error:
        return None
    node = _first_error(tree.root_node)
    if node is None or (language in ("c", "cpp") and _preprocessor_gap(text, node)):
        return None
    gap = _GRAMMAR_GAPS.get(language)
    if gap is not None and gap.match(_node_text(node)):
        return None
    line = min(node.start_point[0] + 1, max(1, len(split_lines(text))))  # EOF counts as last
    if node.is_missing:
        return line, f"does not parse ({language}): missing {node.type!r}"
    near = _snippet(_node_text(node).split("\n", 1)[0], 40)
    return line, f"does not parse ({language}): unexpected {near!r}"


def _syntax(src: _Source) -> Iterator[Violation]:
    """A file the change broke. If it did not parse before the change either, the agent did not
    break it (and our grammar may simply not know the construct)."""
    change = src.change
    if src.language is None or src.new_text is None or not (change.added or change.removed):
        return
    problem = _parse_problem(src.language, src.new_text, src.tree)
    if problem is None:
        return
    old = None if change.is_new else src.old
    if old is not None and _parse_problem(src.language, old) is not None:
        return
    yield Violation(change.path, problem[0], "syntax", problem[1])


# --- entry point -----------------------------------------------------------------------------------


def _new_text(change: FileChange, read_file: ReadFile) -> str | None:
    """The file's text now; for a new file that cannot be read, the diff holds all of it."""
    text = read_file(change.path)
    if text is None and change.is_new:
        return "".join(f"{line}\n" for _, line in change.added)
    return text


def check_changes(changes: Sequence[FileChange], *, read_file: ReadFile) -> list[Violation]:
    """Every placeholder, stub and syntax violation in `changes`, sorted by file and line.

    `read_file(path)` returns a changed file's current text (None when it cannot or must not
    be read); deleted and binary files are skipped."""
    found: dict[tuple[str, int, str], Violation] = {}
    added = frozenset(text.strip() for change in changes for _, text in change.added)
    for change in changes:
        if change.is_deleted or change.is_binary:
            continue
        src = _Source(change, _new_text(change, read_file))
        for violation in (*_syntax(src), *_stubs(src, added), *_placeholders(src)):
            found.setdefault((violation.file, violation.line, violation.kind), violation)
    return sorted(found.values(), key=lambda v: (v.file, v.line, v.kind))
