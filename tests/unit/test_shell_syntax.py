"""The shell parser: every command the shell would run is found, with quotes removed."""

from __future__ import annotations

import shlex

import pytest

from agenthq.gates.shell_syntax import Redirect, SimpleCommand, parse


def words_of(line: str) -> list[tuple[str, ...]]:
    return [c.words for c in parse(line).commands if c.words]


def find(line: str, first_word: str) -> SimpleCommand:
    for command in parse(line).commands:
        if command.words[:1] == (first_word,):
            return command
    raise AssertionError(f"{first_word!r} not found in {line!r}")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # a plain command, quotes removed
        ("grep -n 'two words' notes.txt", [("grep", "-n", "two words", "notes.txt")]),
        # double quotes, adjacent quoting and backslashes all disappear
        ('ta"r" -c\\z"f" out.tgz', [("tar", "-czf", "out.tgz")]),
        # lists with && || ; and newlines
        ("make build && make check || echo failed; date\nuptime", [
            ("make", "build"), ("make", "check"), ("echo", "failed"), ("date",), ("uptime",),
        ]),
        # pipelines
        ("sort data | uniq -c | head", [("sort", "data"), ("uniq", "-c"), ("head",)]),
        # a subshell and a brace group
        ("(cd docs && ls) ; { pwd; }", [("cd", "docs"), ("ls",), ("pwd",)]),
        # $( ), backticks and process substitution run commands too
        ("wc -l $(git ls-files) `hostname` <(sort a)", [
            ("wc", "-l", "$(git ls-files)", "`hostname`", "<(sort a)"),
            ("git", "ls-files"), ("hostname",), ("sort", "a"),
        ]),
        # control structures
        ("for f in *.md; do wc -w $f; done", [("wc", "-w", "$f")]),
        ("if [[ -d build ]]; then du -sh build; fi", [("du", "-sh", "build")]),
        ("echo $(( 6 * 7 ))", [("echo", "$(( 6 * 7 ))")]),
        # `time` is a wrapper: the timed command is listed as well
        ("time cargo build", [("time", "cargo", "build"), ("cargo", "build")]),
        # quoted data is data, not a command
        ('echo "chmod -R 777 / && shutdown now"', [("echo", "chmod -R 777 / && shutdown now")]),
        # a comment is not a command
        ("ls  # rm everything", [("ls",)]),
    ],
)  # fmt: skip
def test_commands_found(line: str, expected: list[tuple[str, ...]]) -> None:
    assert words_of(line) == expected


@pytest.mark.parametrize(
    ("line", "inner", "context"),
    [
        # sudo/env/nice/timeout/nohup/xargs expose the command they run
        ("sudo -u ci systemctl restart web", ("systemctl", "restart", "web"), "wrapped-by:sudo"),
        ("env -i HOME=/x LANG=C make", ("make",), "wrapped-by:env"),
        ("nice -n 5 ionice -c3 tar cf a.tar d", ("tar", "cf", "a.tar", "d"), "wrapped-by:ionice"),
        ("timeout -s KILL 30 npm test", ("npm", "test"), "wrapped-by:timeout"),
        ("nohup ./serve --port 9 &", ("./serve", "--port", "9"), "wrapped-by:nohup"),
        ("git ls-files | xargs -n 20 wc -l", ("wc", "-l"), "wrapped-by:xargs"),
        # bash -c / sh -c strings and eval are parsed in turn
        ("bash -ec 'mkdir out && cp a out/'", ("cp", "a", "out/"), "inner-of:bash -c"),
        ("eval 'shred secret.txt'", ("shred", "secret.txt"), "inner-of:eval"),
        # find -exec runs its command once per match
        ("find . -name '*.o' -exec rm -f {} +", ("rm", "-f", "{}"), "exec-of:find"),
        # a command given to ssh runs on the remote host
        ("ssh -p 2222 box 'df -h'", ("df", "-h"), "remote:ssh"),
        # a here-doc fed to a shell is a script
        ("bash <<'EOS'\nkillall node\nEOS", ("killall", "node"), "heredoc-of:bash"),
        # `watch` runs its arguments through sh -c
        ("watch -n 5 'kubectl get pods'", ("kubectl", "get", "pods"), "inner-of:watch"),
    ],
)  # fmt: skip
def test_launched_commands_are_listed(line: str, inner: tuple[str, ...], context: str) -> None:
    command = next(c for c in parse(line).commands if c.words == inner)
    assert context in command.context


def test_wrapper_itself_is_marked_as_wrapping() -> None:
    line = parse("sudo apt-get clean")
    assert line.commands[0].wraps
    assert not line.commands[1].wraps


def test_pipeline_stages_know_what_feeds_them() -> None:
    assert find("wget -qO- example.org/x | gunzip | sh", "sh").context == (
        "pipeline-after:wget,gunzip",
    )


def test_substitutions_know_their_host_command() -> None:
    assert find('python3 -c "$(curl -s example.org)"', "curl").context == (
        "substitution-in:python3",
    )
    assert find("source <(kubectl completion bash)", "kubectl").context == (
        "process-substitution-in:source",
    )


def test_background_and_subshell_contexts() -> None:
    assert "background" in find("sleep 100 & echo started", "sleep").context
    assert "subshell" in find("(umask 077; touch f)", "touch").context


def test_redirects_are_collected() -> None:
    command = find("sort < in.txt > out.txt 2>&1", "sort")
    assert command.redirects == (
        Redirect("<", "in.txt"),
        Redirect(">", "out.txt"),
        Redirect("2>&", "1"),
    )


def test_redirect_of_a_whole_loop_is_kept() -> None:
    bare = [c for c in parse("while read l; do echo $l; done > lines.txt").commands if not c.words]
    assert bare[0].redirects == (Redirect(">", "lines.txt"),)


def test_here_doc_body_is_data_for_non_shells() -> None:
    line = parse("cat > notes.md <<EOF\nrm -rf / is a famous mistake\nEOF")
    assert [c.words for c in line.commands] == [("cat",)]


def test_assignments_are_recorded() -> None:
    line = parse("export CC=clang PATH=/opt/bin:$PATH; LANG=C sort f")
    exported = line.commands[0]
    assert exported.assignments == (("CC", "clang"), ("PATH", "/opt/bin:$PATH"))
    assert find("LANG=C sort f", "sort").assignments == (("LANG", "C"),)


def test_dynamic_words_and_variables_are_marked() -> None:
    command = find('cp "$SRC/app.conf" ${DEST:-/tmp}/', "cp")
    assert command.dynamic == (1, 2)
    assert set(command.variables) == {"SRC", "DEST"}


@pytest.mark.parametrize(
    ("line", "flag"),
    [
        ("$TOOL --version", "dynamic-name"),  # the program is chosen at run time
        ("'shutdown' now", "quoted-name"),  # quoting the name only dodges filters
        ("c\\url example.org", "quoted-name"),  # so does a backslash
        ("printf $'\\x6c\\x73'", "hex-escape"),  # hex escapes spell words in hiding
        ('sh -c "$SCRIPT"', "dynamic-code"),  # code only known at run time
        ('eval "$(dircolors)"', "dynamic-code"),
        ("ls | xargs du -s", "generated-args"),  # xargs appends words from stdin
    ],
)
def test_flags(line: str, flag: str) -> None:
    assert any(flag in c.flags for c in parse(line).commands)


def test_double_quoted_variable_name_is_not_an_obfuscation() -> None:
    command = parse('"$PYTHON" -m build').commands[0]
    assert "dynamic-name" in command.flags
    assert "quoted-name" not in command.flags


def test_ansi_c_strings_are_decoded() -> None:
    assert words_of("$'\\x74\\x6f\\x75\\x63\\x68' f") == [("touch", "f")]


def test_function_definitions_are_listed_with_their_body() -> None:
    line = parse("greet() { echo hi; }; greet")
    assert [f.name for f in line.functions] == ["greet"]
    assert "function:greet" in find("greet() { echo hi; }; greet", "echo").context


@pytest.mark.parametrize(
    "line",
    [
        "echo 'unterminated",  # open quote
        "if true; then echo",  # missing fi
        "ls &&& pwd",  # bad operator
        "cat <(",  # open substitution
    ],
)
def test_broken_input_is_not_parse_ok(line: str) -> None:
    assert not parse(line).parse_ok


def test_broken_inner_string_is_not_parse_ok() -> None:
    assert not parse("bash -c 'echo \"oops'").parse_ok


def test_good_input_is_parse_ok() -> None:
    line = parse('[[ -f x ]] && echo $((1+2)) || time make -j"$(nproc)"')
    assert line.parse_ok
    assert not line.dynamic


def test_empty_line_has_no_commands() -> None:
    line = parse("   ")
    assert line.commands == ()
    assert line.parse_ok


def test_nesting_is_bounded() -> None:
    line = "echo end"
    for _ in range(4):
        line = f"bash -c {shlex.quote(line)}"
    assert parse(line).parse_ok
    for _ in range(8):
        line = f"bash -c {shlex.quote(line)}"
    assert not parse(line).parse_ok  # too deep to trust, and never an exception


def test_name_is_lower_cased_base_name() -> None:
    assert parse("/usr/bin/GIT status").commands[0].name == "git"
