"""What a refused task must leave as it was: every entry under a directory, for the hostile-input tests."""

import os


def snapshot(root):
    """Every entry under root: its kind, content or link target, and mode."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                body = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                body = "dir"
            else:
                with open(path, "rb") as handle:
                    body = handle.read()
            state[os.path.relpath(path, root)] = (body, st.st_mode)
    return state
