# Sourced by the run_*.sh scripts: their settings, read from the environment, and the folder they
# run in. Plain POSIX shell, so the scripts also run under Git Bash / cmder on Windows.
#   EPOCHES   training epochs of every run (default 2, a demo; the paper trains 240)
#   DATA_DIR  folder holding cifar-100-python/ (default ./data inside WORK_DIR)
#   DOWNLOAD  download CIFAR-100 there if it is absent: True or False (default True)
#   WORK_DIR  where ./data, ./ckpts and ./logs are (default: the repository root)
#   PYTHON    the Python interpreter (default: python from PATH)
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# A relative path given by the user means relative to the folder the script was started from.
absolute() {
    case $1 in
        /* | [A-Za-z]:*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

if [ -n "${WORK_DIR:-}" ]; then WORK_DIR=$(absolute "$WORK_DIR"); else WORK_DIR=$ROOT; fi
if [ -n "${DATA_DIR:-}" ]; then DATA_DIR=$(absolute "$DATA_DIR"); else DATA_DIR=./data; fi
EPOCHES=${EPOCHES:-2}
DOWNLOAD=${DOWNLOAD:-True}
PYTHON=${PYTHON:-python}
# Exported so that run_all.sh's steps see the same, already resolved, settings.
export WORK_DIR DATA_DIR EPOCHES DOWNLOAD PYTHON

mkdir -p "$WORK_DIR"
cd "$WORK_DIR"
