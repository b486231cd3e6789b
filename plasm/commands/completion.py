"""`plasmd completion bash|zsh`: a shell completion script, made from the parser itself.

The .deb installs the two scripts (debian/completion/, kept equal to this output by
tests/cli/test_completion.py): bash's under /usr/share/bash-completion/completions, zsh's
under /usr/share/zsh/vendor-completions (zsh runs the bash one through bashcompinit).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=("bash", "zsh"), help="which shell's script")


def main(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0


def script(shell: str) -> str:
    """The completion script for ``shell`` (bash or zsh)."""
    from plasm.cli import build_parser

    parser = build_parser()
    commands = _subcommands(parser)
    cases = "\n".join(
        f"        {name}) opts=\"{' '.join(options)}\" ;;" for name, options in commands.items()
    )
    body = f'''# plasmd(1) completion; made by `plasmd completion {shell}`: do not edit
_plasmd() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" opts
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{' '.join(commands)} --help --version" -- "$cur"))
        return
    fi
    case "${{COMP_WORDS[1]}}" in
{cases}
        *) opts="" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _plasmd plasmd
'''
    if shell == "zsh":
        return "#compdef plasmd\nautoload -U +X bashcompinit && bashcompinit\n" + body
    return body


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                options = sorted({o for a in sub._actions for o in a.option_strings
                                  if o.startswith("--")})
                found[name] = options
    return found
