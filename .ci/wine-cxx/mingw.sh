#!/usr/bin/env bash
# Run by relay.py through Wine (start /unix): MinGW-w64's g++ with the arguments relay.py gives it
# (Windows paths made Linux ones). Its output and exit status go to
# files in the folder $1, because Wine hands neither back to the Windows program that started it;
# the status comes last, whole (renamed into place): relay.py waits for it.
out=$1
shift
x86_64-w64-mingw32-g++-posix "$@" >"$out/stdout" 2>"$out/stderr"
echo $? >"$out/status.part"
mv "$out/status.part" "$out/status"
