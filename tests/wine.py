"""Running the suite with a Windows Python under Wine (.ci/windows): how to tell, and what Wine cannot do.

Each limitation below was shown by a few-line script run under Wine 8.0 outside the project (the
docs/windows.md says how it was tested); tests skip or work around only that, and only
under Wine.
"""
import ctypes
import os


def _under_wine():
    if os.name != "nt":
        return False
    return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")


UNDER_WINE = _under_wine()

# GenerateConsoleCtrlEvent fails under Wine 8.0 (ERROR_INVALID_HANDLE, with or without a console),
# so os.kill(pid, CTRL_BREAK_EVENT) raises SystemError (and then TerminateProcess kills the child);
# Wine's C runtime also maps only CTRL_C_EVENT to a signal (SIGINT), never CTRL_BREAK_EVENT to SIGBREAK.
NO_CONSOLE_EVENTS = ("Wine 8.0 cannot send console control events (GenerateConsoleCtrlEvent fails "
                     "with ERROR_INVALID_HANDLE) and its C runtime never raises SIGBREAK")

# Wine runs a Unix bash as a child of a Windows program with an invalid process handle, and that
# bash could not run python.exe anyway: there is no Windows bash (Git Bash) under Wine.
NO_BASH = ("no bash for the Windows Python under Wine (Git Bash's role); .ci/windows runs "
           "scripts/run_all.sh with it instead")


def raise_sigint_in(pid):
    """What a Windows console does on Ctrl-C, as far as Python sees it: on a new thread of process
    ``pid``, the C runtime calls the SIGINT handler (Python's, which interrupts the main thread).

    Under Wine the console cannot send the event (NO_CONSOLE_EVENTS), so the thread is started here
    and calls the C runtime's raise(SIGINT). (A thread at kernel32!CtrlRoutine, the console's own
    entry point, also reaches the handler under Wine, but afterwards pipes of other children of the
    test process never reported end-of-file: the resume tests hung in 3 runs out of 3.)
    """
    from ctypes import wintypes
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.CreateRemoteThread.restype = wintypes.HANDLE
    kernel32.CreateRemoteThread.argtypes = [wintypes.HANDLE, ctypes.c_void_p, ctypes.c_size_t,
                                            ctypes.c_void_p, ctypes.c_void_p, wintypes.DWORD,
                                            ctypes.c_void_p]
    process_all_access, sigint = 0x1FFFFF, 2
    process = kernel32.OpenProcess(process_all_access, False, pid)
    if not process:
        raise ctypes.WinError(ctypes.get_last_error())
    try:
        # System DLLs are loaded at the same address in every process: our raise is the child's.
        crt_raise = ctypes.cast(ctypes.CDLL("ucrtbase")["raise"], ctypes.c_void_p)
        thread = kernel32.CreateRemoteThread(process, None, 0, crt_raise, sigint, 0, None)
        if not thread:
            raise ctypes.WinError(ctypes.get_last_error())
        kernel32.CloseHandle(wintypes.HANDLE(thread))
    finally:
        kernel32.CloseHandle(wintypes.HANDLE(process))
