"""User-facing errors: one clear line and exit code 2, never a framework stack trace."""
import sys


class UserError(Exception):
    """Bad input from the user (a flag, a file, a device): reported as one line, exit code 2."""


def run_main(main, argv=None):
    """Run an entry point's ``main(argv)``, turning ``UserError`` into a one-line message + exit 2."""
    prog = sys.argv[0].rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    try:
        return main(argv)
    except UserError as err:
        # One line even when the message quotes a library's multi-line text.
        print(f"{prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as err:
        print(f"{prog}: {err}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:  # Ctrl-C before training started (loading, compiling): nothing saved
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)


class Interrupted(Exception):
    """The user stopped a run (Ctrl-C / SIGTERM); the message says how to continue it."""
