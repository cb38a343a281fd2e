"""Turn one shell command line into the flat list of simple commands it would run.

Risk rules and policy patterns must look at what the shell *executes*, not at the raw text:
`echo "git push --force"` pushes nothing, while `echo $(rm -rf /)` deletes everything. So we
parse with tree-sitter-bash (a real grammar that copes with `[[ ]]`, `$(( ))`, here-docs and
`time`) and walk every place a command can hide: pipelines, `&&`/`||`/`;` lists, subshells,
`$(…)`/backticks, process substitution, function bodies, wrappers such as `sudo`/`env`/`xargs`
(the wrapped command is listed too), `bash -c '…'`/`eval '…'`/`ssh host '…'` (the inner string
is parsed in turn) and `find -exec … ;`.

Each `SimpleCommand` carries a `context` path, outermost first, whose entries read
`kind:detail`: `pipeline-after:curl,base64`, `substitution-in:echo`,
`process-substitution-in:bash`, `subshell`, `background`, `wrapped-by:sudo`,
`inner-of:bash -c`, `inner-of:eval`, `remote:ssh`, `exec-of:find`, `function:NAME`,
`heredoc-of:bash`, `assignment:NAME`, `compound`. Rules use them, e.g. a downloader whose
output is piped into `sh`.

Parsing is conservative: when the grammar reports ERROR or MISSING nodes, `parse_ok` is False
and the caller must not treat the command as understood (the risk scorer scores it high).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

__all__ = [
    "PRIVILEGE_WRAPPERS",
    "SHELLS",
    "FunctionDef",
    "ParsedLine",
    "Redirect",
    "SimpleCommand",
    "command_name",
    "parse",
]

# Shells whose `-c STRING`, here-doc or here-string we parse as more shell code.
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish"})
# Wrappers that change who runs the command; policy never treats them as transparent.
PRIVILEGE_WRAPPERS = frozenset({"sudo", "doas", "su", "pkexec", "runuser"})
# Bash nests inner strings rarely; a hostile line could nest `bash -c` forever.
_MAX_DEPTH = 8
_SPECIAL_VARS = frozenset("?#$!-*@_0123456789")


@dataclass(frozen=True)
class Redirect:
    """One redirection: `op` includes a leading descriptor (`2>`), `target` is its static text."""

    op: str
    target: str


@dataclass(frozen=True)
class SimpleCommand:
    """One command the shell would start, with quotes removed from every static word.

    `dynamic` holds the indices of words that contain expansions or substitutions (their text
    is kept as written); `variables` names the variables expanded anywhere in the words.
    `flags` marks things rules care about: `dynamic-name`, `quoted-name`, `hex-escape`,
    `dynamic-code` (eval/`sh -c` of a run-time string), `generated-args` (xargs / find -exec
    supply more arguments). `wraps` is True when this command only launches the next listed one.
    """

    words: tuple[str, ...]
    redirects: tuple[Redirect, ...] = ()
    context: tuple[str, ...] = ()
    assignments: tuple[tuple[str, str], ...] = ()
    dynamic: tuple[int, ...] = ()
    variables: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()
    wraps: bool = False

    @property
    def name(self) -> str:
        """The command's base name, lower-cased (`/usr/bin/Git` → `git`); '' when none."""
        return command_name(self.words[0]) if self.words else ""


@dataclass(frozen=True)
class FunctionDef:
    """A shell function the line defines; its body's commands are also in `commands`."""

    name: str


@dataclass(frozen=True)
class ParsedLine:
    """The whole command line: every simple command, and whether the grammar understood it."""

    source: str
    commands: tuple[SimpleCommand, ...]
    parse_ok: bool
    dynamic: bool  # some command name or eval'd code is only known at run time
    functions: tuple[FunctionDef, ...] = ()


def command_name(word: str) -> str:
    """Base name of a command word, lower-cased: macOS file systems ignore case, so `SUDO` runs
    sudo there, and rules must not be dodged by capitals."""
    return word.rsplit("/", 1)[-1].lower()


@dataclass(frozen=True)
class _Word:
    text: str
    dynamic: bool = False
    variables: tuple[str, ...] = ()
    quoted: bool = False
    hex_escape: bool = False


@dataclass
class _Out:
    commands: list[SimpleCommand] = field(default_factory=list)
    functions: list[FunctionDef] = field(default_factory=list)
    parse_ok: bool = True
    dynamic: bool = False
    pending: dict[int, list[Node]] = field(default_factory=dict)


def load_parser() -> None:
    """Load the parser now (tree-sitter and its bash grammar) rather than at the first parse."""
    _parser()


@cache
def _parser() -> Parser:
    """One parser per process: building the language object is the slow part."""
    import tree_sitter
    import tree_sitter_bash

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


def parse(command: str) -> ParsedLine:
    """Parse `command` into its simple commands; never raises on bad input."""
    out = _Out()
    _parse_into(command, (), out, 0)
    return ParsedLine(
        source=command,
        commands=tuple(out.commands),
        parse_ok=out.parse_ok,
        dynamic=out.dynamic,
        functions=tuple(out.functions),
    )


def _parse_into(text: str, ctx: tuple[str, ...], out: _Out, depth: int) -> None:
    if depth > _MAX_DEPTH:
        out.parse_ok = False
        return
    tree = _parser().parse(text.encode("utf-8", "surrogatepass"))
    if tree.root_node.has_error:
        out.parse_ok = False
    _Walker(out, depth).walk(tree.root_node, ctx)


def _text(node: Node) -> str:
    raw = node.text
    return raw.decode("utf-8", "replace") if raw is not None else ""


_BACKSLASH = re.compile(r"\\(\n|.)", re.DOTALL)
_DQ_ESCAPE = re.compile(r"\\([\\\"$`\n])")
_NUMERIC_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]|u[0-9a-fA-F]|U[0-9a-fA-F]|[0-7])")
_SHELL_C = re.compile(r"-[a-zA-Z]*c[a-zA-Z]*")  # bash -c, -lc, -ec
_ASSIGNMENT_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def _unescape_word(raw: str) -> str:
    """Unquoted word: a backslash quotes the next character; backslash-newline disappears."""
    return _BACKSLASH.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), raw)


def _ansi_c(raw: str) -> tuple[str, bool]:
    """Decode `$'…'`; report whether it used numeric escapes (a favourite of obfuscation)."""
    body = raw[2:-1]
    numeric = bool(_NUMERIC_ESCAPE.search(body))
    try:
        decoded = codecs.decode(body.encode("latin-1", "backslashreplace"), "unicode_escape")
    except (UnicodeDecodeError, ValueError):
        decoded = body
    return decoded, numeric


def _expansion_var(node: Node) -> str | None:
    for child in node.children:
        if child.type in ("variable_name", "special_variable_name"):
            return _text(child)
    return None


def _word(node: Node) -> _Word:
    """Static text of one shell word, quotes removed; expansions kept verbatim and marked."""
    kind = node.type
    if kind == "word":
        return _Word(_unescape_word(_text(node)), quoted="\\" in _text(node))
    if kind == "raw_string":
        return _Word(_text(node)[1:-1], quoted=True)
    if kind == "ansi_c_string":
        decoded, numeric = _ansi_c(_text(node))
        return _Word(decoded, quoted=True, hex_escape=numeric)
    if kind in ("string", "translated_string", "concatenation"):
        return _join_parts(node, kind != "concatenation")
    if kind in ("simple_expansion", "expansion"):
        name = _expansion_var(node)
        variables = (name,) if name and name not in _SPECIAL_VARS else ()
        return _Word(_text(node), dynamic=True, variables=variables)
    if kind in ("command_substitution", "process_substitution", "arithmetic_expansion"):
        return _Word(_text(node), dynamic=True)
    if kind == "string_content":
        return _Word(_DQ_ESCAPE.sub(r"\1", _text(node)).replace("\\\n", ""))
    return _Word(_text(node))


def _join_parts(node: Node, in_quotes: bool) -> _Word:
    parts = [_word(child) for child in node.children if child.is_named]
    return _Word(
        "".join(p.text for p in parts),
        dynamic=any(p.dynamic for p in parts),
        variables=tuple(v for p in parts for v in p.variables),
        quoted=in_quotes or any(p.quoted for p in parts),
        hex_escape=any(p.hex_escape for p in parts),
    )


def _substitutions(node: Node) -> Iterator[Node]:
    """Command and process substitutions inside a word (not inside nested substitutions)."""
    for child in node.children:
        if child.type in ("command_substitution", "process_substitution"):
            yield child
        elif child.child_count:
            yield from _substitutions(child)


class _Walker:
    """Depth-first walk that appends one `SimpleCommand` per command the shell would run."""

    def __init__(self, out: _Out, depth: int) -> None:
        self.out = out
        self.depth = depth
        self.handlers: dict[str, Callable[[Node, tuple[str, ...]], None]] = {
            "command": self._command,
            "pipeline": self._pipeline,
            "redirected_statement": self._redirected,
            "subshell": self._subshell,
            "function_definition": self._function,
            "variable_assignment": self._assignment,
            "declaration_command": self._declaration,
            "unset_command": self._declaration,
            "command_substitution": self._substitution,
            "process_substitution": self._substitution,
            "heredoc_body": self._skip,
            "comment": self._skip,
        }

    def walk(self, node: Node, ctx: tuple[str, ...]) -> None:
        handler = self.handlers.get(node.type)
        if handler is not None:
            handler(node, ctx)
            return
        if node.type == "ERROR" or node.is_missing:
            self.out.parse_ok = False
        self._children(node, ctx)

    def _children(self, node: Node, ctx: tuple[str, ...]) -> None:
        """Walk named children; a statement followed by `&` runs in the background."""
        children = node.children
        for index, child in enumerate(children):
            if not child.is_named:
                continue
            following = children[index + 1] if index + 1 < len(children) else None
            backgrounded = following is not None and following.type == "&"
            self.walk(child, (*ctx, "background") if backgrounded else ctx)

    def _skip(self, node: Node, ctx: tuple[str, ...]) -> None:
        return

    def _subshell(self, node: Node, ctx: tuple[str, ...]) -> None:
        self._children(node, (*ctx, "subshell"))

    def _substitution(self, node: Node, ctx: tuple[str, ...]) -> None:
        self._children(node, ctx)

    def _pipeline(self, node: Node, ctx: tuple[str, ...]) -> None:
        """Each stage after the first learns the programs of all the stages before it
        (`sudo curl x | sh` → `pipeline-after:sudo,curl`)."""
        before: list[str] = []
        for stage in (c for c in node.children if c.is_named):
            stage_ctx = (*ctx, "pipeline-after:" + ",".join(before)) if before else ctx
            start = len(self.out.commands)
            self.walk(stage, stage_ctx)
            names = [
                c.name
                for c in self.out.commands[start:]
                if c.words and not any("substitution-in:" in x for x in c.context[len(stage_ctx) :])
            ]
            before.extend(names or ["?"])

    def _redirected(self, node: Node, ctx: tuple[str, ...]) -> None:
        """Attach a statement's redirections to the command they apply to."""
        body = node.child_by_field_name("body")
        redirects = node.children_by_field_name("redirect")
        target = body
        while target is not None and target.type in ("list", "pipeline"):
            named = [c for c in target.children if c.is_named]
            target = named[-1] if named else None
        if target is not None and target.type == "command":
            self.out.pending.setdefault(target.id, []).extend(redirects)
        elif redirects:
            self._emit_bare_redirects(redirects, (*ctx, "compound") if body else ctx)
        if body is not None:
            self.walk(body, ctx)

    def _emit_bare_redirects(self, nodes: list[Node], ctx: tuple[str, ...]) -> None:
        redirects, _bodies = self._redirects(nodes, ctx, "")
        self.out.commands.append(SimpleCommand(words=(), redirects=redirects, context=ctx))

    def _function(self, node: Node, ctx: tuple[str, ...]) -> None:
        name_node = node.child_by_field_name("name")
        name = _text(name_node) if name_node is not None else "?"
        self.out.functions.append(FunctionDef(name))
        body = node.child_by_field_name("body")
        if body is not None:
            self.walk(body, (*ctx, f"function:{name}"))

    def _assignment(self, node: Node, ctx: tuple[str, ...]) -> None:
        name, value = self._assignment_pair(node, ctx)
        self.out.commands.append(SimpleCommand(words=(), context=ctx, assignments=((name, value),)))

    def _assignment_pair(self, node: Node, ctx: tuple[str, ...]) -> tuple[str, str]:
        name_node = node.child_by_field_name("name")
        value_node = node.child_by_field_name("value")
        name = _text(name_node) if name_node is not None else ""
        if value_node is None:
            return name, ""
        for sub in _substitutions(node):
            self.walk(sub, (*ctx, f"assignment:{name}"))
        return name, _word(value_node).text

    def _declaration(self, node: Node, ctx: tuple[str, ...]) -> None:
        """`export A=b`, `declare -x`, `unset X`: a command whose arguments are assignments."""
        words: list[str] = []
        assignments: list[tuple[str, str]] = []
        for child in node.children:
            if child.type == "variable_assignment":
                pair = self._assignment_pair(child, ctx)
                assignments.append(pair)
                words.append(f"{pair[0]}={pair[1]}")
            elif child.is_named:
                words.append(_word(child).text)
            else:
                words.append(_text(child))
        self.out.commands.append(
            SimpleCommand(words=tuple(words), context=ctx, assignments=tuple(assignments))
        )

    def _command(self, node: Node, ctx: tuple[str, ...]) -> None:
        words: list[_Word] = []
        word_nodes: list[Node] = []
        redirect_nodes = list(self.out.pending.pop(node.id, []))
        assignments: list[tuple[str, str]] = []
        for child in node.children:
            if child.type == "variable_assignment":
                assignments.append(self._assignment_pair(child, ctx))
            elif child.type.endswith("_redirect"):
                redirect_nodes.append(child)
            elif child.type == "command_name":
                inner = child.named_children
                word_nodes.append(inner[0] if inner else child)
            elif child.is_named and child.type != "comment":
                word_nodes.append(child)
        words = [_word(n) for n in word_nodes]
        name = command_name(words[0].text) if words and not words[0].dynamic else "?"
        redirects, bodies = self._redirects(redirect_nodes, ctx, name)
        self._emit(
            words, redirects=redirects, ctx=ctx, assignments=tuple(assignments), bodies=bodies
        )
        for word_node in word_nodes:
            self._nested(word_node, ctx, name)

    def _nested(self, word_node: Node, ctx: tuple[str, ...], name: str) -> None:
        if word_node.type in ("command_substitution", "process_substitution"):
            subs: Iterator[Node] = iter((word_node,))
        else:
            subs = _substitutions(word_node)
        for sub in subs:
            kind = "process-substitution" if sub.type == "process_substitution" else "substitution"
            self.walk(sub, (*ctx, f"{kind}-in:{name}"))

    def _redirects(
        self, nodes: list[Node], ctx: tuple[str, ...], name: str
    ) -> tuple[tuple[Redirect, ...], list[str]]:
        """Redirections as (op, target); here-doc and here-string bodies returned separately."""
        result: list[Redirect] = []
        bodies: list[str] = []
        for node in nodes:
            self._redirect(node, ctx, name, result, bodies)
        return tuple(result), bodies

    def _redirect(
        self, node: Node, ctx: tuple[str, ...], name: str, result: list[Redirect], bodies: list[str]
    ) -> None:
        fd = ""
        op = ""
        target: Node | None = None
        for child in node.children:
            if child.type == "file_descriptor":
                fd = _text(child)
            elif not child.is_named:
                op = op or _text(child)
            elif child.type == "heredoc_end":
                continue
            elif child.type == "heredoc_start":
                result.append(Redirect(fd + (op or "<<"), _word(child).text.strip("'\"")))
            elif child.type == "heredoc_body":
                bodies.append(_text(child))
                self._nested(child, ctx, name)
            elif child.type.endswith("_redirect"):
                self._redirect(child, ctx, name, result, bodies)
            elif target is None:
                target = child
        if target is None:
            return
        self._nested(target, ctx, name)
        text = _word(target).text
        if node.type == "herestring_redirect":
            bodies.append(text)
        result.append(Redirect(fd + op, text))

    def _emit(
        self,
        words: list[_Word],
        *,
        redirects: tuple[Redirect, ...],
        ctx: tuple[str, ...],
        assignments: tuple[tuple[str, str], ...],
        bodies: list[str],
        extra_flags: frozenset[str] = frozenset(),
    ) -> None:
        """Emit one command, then whatever it launches (wrapped command, inner shell code)."""
        flags = set(extra_flags)
        if words and words[0].dynamic:
            flags.add("dynamic-name")
            self.out.dynamic = True
        if words and words[0].quoted and not words[0].dynamic:  # "$PYTHON" is no trick
            flags.add("quoted-name")
        if any(w.hex_escape for w in words):
            flags.add("hex-escape")
        launched = _Launch.of(words)
        if launched.code is not None and launched.code.dynamic:
            flags.add("dynamic-code")
            self.out.dynamic = True
        wraps = launched.wraps and "dynamic-code" not in flags
        built = _build(
            words, redirects=redirects, ctx=ctx, assignments=assignments, flags=flags, wraps=wraps
        )
        self.out.commands.append(built)
        if launched.inner:
            generated = frozenset({"generated-args"}) if launched.generated else frozenset()
            inner_ctx = (*ctx, launched.context)
            self._emit(
                list(launched.inner),
                redirects=(),
                ctx=inner_ctx,
                assignments=(),
                bodies=[],
                extra_flags=generated,
            )
        if launched.code is not None and not launched.code.dynamic:
            self._parse_code(launched.code.text, launched.code_context, ctx)
        if launched.reads_stdin_code:
            for body in bodies:
                self._parse_code(body, f"heredoc-of:{launched.name}", ctx)

    def _parse_code(self, code: str, label: str, ctx: tuple[str, ...]) -> None:
        _parse_into(code, (*ctx, label), self.out, self.depth + 1)


def _build(
    words: list[_Word],
    *,
    redirects: tuple[Redirect, ...],
    ctx: tuple[str, ...],
    assignments: tuple[tuple[str, str], ...],
    flags: set[str],
    wraps: bool,
) -> SimpleCommand:
    return SimpleCommand(
        words=tuple(w.text for w in words),
        redirects=redirects,
        context=ctx,
        assignments=assignments,
        dynamic=tuple(i for i, w in enumerate(words) if w.dynamic),
        variables=tuple(v for w in words for v in w.variables),
        flags=frozenset(flags),
        wraps=wraps,
    )


# --- what a command launches -------------------------------------------------------------------


@dataclass(frozen=True)
class _WrapSpec:
    """How to find the wrapped command inside a wrapper's arguments."""

    valued: frozenset[str] = frozenset()  # options that consume the next word
    positionals: int = 0  # plain arguments before the command (timeout's DURATION)
    assignments: bool = False  # env-style NAME=VALUE words before the command
    generated: bool = False  # the wrapper appends arguments of its own (xargs)


def _spec(valued: str = "", positionals: int = 0, **kw: bool) -> _WrapSpec:
    return _WrapSpec(frozenset(valued.split()), positionals, **kw)


# One row per wrapper: the options that take a value, and what else precedes the command.
_WRAPPERS: dict[str, _WrapSpec] = {
    # sudo/doas/pkexec/runuser run the rest as another user
    "sudo": _spec("-u -g -h -p -r -t -C -D -U -T --user --group --host --prompt --chdir"),
    "doas": _spec("-u -C"),
    "pkexec": _spec("--user"),
    "runuser": _spec("-u -g -G --user --group"),
    # env sets variables then runs the rest
    "env": _spec("-u --unset -C --chdir", assignments=True),
    # scheduling and I/O wrappers
    "nice": _spec("-n --adjustment"),
    "ionice": _spec("-c -n -p -t --class --classdata"),
    "chrt": _spec("", positionals=1),
    "taskset": _spec("", positionals=1),
    "stdbuf": _spec("-i -o -e --input --output --error"),
    "timeout": _spec("-s -k --signal --kill-after", positionals=1),
    "gtimeout": _spec("-s -k --signal --kill-after", positionals=1),
    "nohup": _spec(),
    "busybox": _spec(),
    "setsid": _spec(),
    "time": _spec("-o -f --output --format"),
    "unbuffer": _spec(),
    "caffeinate": _spec("-t -w"),
    "flock": _spec("-w -E --timeout --conflict-exit-code", positionals=1),
    "chroot": _spec("--userspec --groups", positionals=1),
    "torsocks": _spec(),
    "proxychains": _spec("-f"),
    "proxychains4": _spec("-f"),
    "strace": _spec("-o -p -e -s -u -E"),
    "ltrace": _spec("-o -p -e -s -u"),
    # shell builtins that run their arguments as a command
    "command": _spec(),
    "builtin": _spec(),
    "exec": _spec("-a"),
    # xargs appends words read from stdin to the command
    "xargs": _spec(
        "-I -L -n -P -s -d -E -a --arg-file --delimiter --max-args --max-procs --max-chars "
        "--replace --max-lines --eof --process-slot-var",
        generated=True,
    ),
}
_SSH_VALUED = frozenset(
    {"-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o", "-p"}
    | {"-Q", "-R", "-S", "-W", "-w", "-B"}
)
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_CODE_RUNNERS = frozenset({"eval", "watch"})


@dataclass(frozen=True)
class _Launch:
    """What a command starts besides itself: a wrapped command and/or a string of shell code."""

    name: str = ""
    inner: tuple[_Word, ...] = ()
    context: str = ""
    generated: bool = False
    wraps: bool = False
    code: _Word | None = None
    code_context: str = ""
    reads_stdin_code: bool = False

    @staticmethod
    def of(words: list[_Word]) -> _Launch:
        if not words:
            return _Launch()
        name = command_name(words[0].text)
        if name in SHELLS or (words[0].dynamic and _has_c_option(words[1:])):
            return _shell_launch(name, words)
        if name in _WRAPPERS and not (name == "command" and _is_lookup(words)):
            return _wrapper_launch(name, words, _WRAPPERS[name])
        if name in _CODE_RUNNERS:
            return _code_runner_launch(name, words)
        if name == "su":
            code = _option_value(words, ("-c", "--command"))
            return _Launch(name, code=code, code_context="inner-of:su -c", wraps=True)
        if name == "ssh":
            return _ssh_launch(words)
        if name == "find":
            return _find_launch(words)
        return _Launch(name)


def _is_lookup(words: list[_Word]) -> bool:
    return any(w.text in ("-v", "-V") for w in words[1:2])


def _has_c_option(args: list[_Word]) -> bool:
    return any(_SHELL_C.fullmatch(w.text) for w in args if not w.dynamic)


def _shell_launch(name: str, words: list[_Word]) -> _Launch:
    """`bash [-opts] -c 'code'`: the first operand after the options is the code. Without an
    operand (or with `-s`/`-`) the shell reads its program from stdin: a pipe or a here-doc."""
    label = words[0].text if words[0].dynamic else name
    seen_c = False
    index = 1
    while index < len(words):
        word = words[index]
        text = word.text
        if not seen_c and not word.dynamic and _SHELL_C.fullmatch(text):
            seen_c = True
        elif text in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            index += 1
        elif text.startswith(("-", "+")) and not word.dynamic and text not in ("-", "--"):
            pass
        elif seen_c:
            return _Launch(name, code=word, code_context=f"inner-of:{label} -c", wraps=True)
        else:
            return _Launch(name, reads_stdin_code=text in ("-", "/dev/stdin"))
        index += 1
    return _Launch(name, reads_stdin_code=True)


def _wrapper_launch(name: str, words: list[_Word], spec: _WrapSpec) -> _Launch:
    index = 1
    skip_positionals = spec.positionals
    while index < len(words):
        text = words[index].text
        if text == "--":
            index += 1
            break
        if text.startswith("-") and len(text) > 1 and not words[index].dynamic:
            index += 2 if text in spec.valued else 1
            continue
        if spec.assignments and _ASSIGNMENT_WORD.match(text):
            index += 1
            continue
        if skip_positionals:
            skip_positionals -= 1
            index += 1
            continue
        break
    inner = tuple(words[index:])
    return _Launch(
        name, inner=inner, context=f"wrapped-by:{name}", generated=spec.generated, wraps=bool(inner)
    )


def _code_runner_launch(name: str, words: list[_Word]) -> _Launch:
    """`eval a b` runs "a b"; `watch -n 1 a b` runs "a b" through `sh -c`."""
    args = words[1:]
    if name == "watch":
        while args and args[0].text.startswith("-"):
            takes = args[0].text in ("-n", "--interval", "-d", "--differences")
            args = args[2:] if takes and args[0].text != "-d" else args[1:]
    if not args:
        return _Launch(name)
    code = _Word(
        " ".join(w.text for w in args),
        dynamic=any(w.dynamic for w in args),
    )
    return _Launch(name, code=code, code_context=f"inner-of:{name}", wraps=True)


def _option_value(words: list[_Word], options: tuple[str, ...]) -> _Word | None:
    for index, word in enumerate(words[:-1]):
        if word.text in options:
            return words[index + 1]
    return None


def _ssh_launch(words: list[_Word]) -> _Launch:
    """`ssh [opts] host cmd…`: everything after the host runs on the remote machine."""
    index = 1
    while index < len(words) and words[index].text.startswith("-"):
        index += 2 if words[index].text in _SSH_VALUED else 1
    rest = words[index + 1 :]
    if not rest:
        return _Launch("ssh")
    code = _Word(" ".join(w.text for w in rest), dynamic=any(w.dynamic for w in rest))
    return _Launch("ssh", code=code, code_context="remote:ssh")


def _find_launch(words: list[_Word]) -> _Launch:
    """`find … -exec cmd {} ;` runs cmd once per match (only the first -exec is expanded)."""
    for index, word in enumerate(words):
        if word.text in _FIND_EXEC:
            inner: list[_Word] = []
            for arg in words[index + 1 :]:
                if arg.text in (";", "+"):
                    break
                inner.append(arg)
            if inner:
                return _Launch("find", inner=tuple(inner), context="exec-of:find", generated=True)
    return _Launch("find")
