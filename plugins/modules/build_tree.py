#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: build_tree
short_description: Unpack a source revision, apply a patch series, run build steps, and stamp the tree
version_added: 0.1.0
description:
  - Builds third-party code into a directory of its own, in one path shared by every role that builds such code
    (source, patches, build steps, stamp).
  - Unpacks O(source) (a git repository at O(revision) through C(git archive), or a tar file) into C(<dest>.tmp),
    applies O(patches) in order with C(patch -p1 --forward --batch), runs O(steps) in order with their output
    appended to C(<dest>.tmp/build.log), checks O(creates), then writes the stamp C(.labkit-built) and renames
    C(<dest>.tmp) to O(dest). The tree lists the patches it applied, one file name a line, in C(.labkit-patches).
  - The stamp holds a digest of the inputs (source, revision, patch contents, steps, O(creates)); when O(dest) has a
    stamp with the same digest nothing is done.
  - A lock (C(flock) on C(<dest>.lock)) keeps two runs on one host from building one O(dest) at the same time; the
    second waits and then finds the build done. A C(<dest>.tmp) left by an interrupted run is removed first.
  - A patch that does not apply fails naming the patch and the revision; a failing step fails with the step, its
    exit code and the last lines of the build log; that tree is kept at C(<dest>.failed) for its log until the next
    build. O(dest) is left as it was in both cases.
author:
  - labkit developers (@labkit)
attributes:
  check_mode:
    support: full
    description: Reports whether the tree would be built, without unpacking, locking or writing anything.
  diff_mode:
    support: none
    description: A build has no before and after to show; the stamp's digest is returned instead.
options:
  dest:
    description:
      - Absolute path of the build directory. Its parent is created when missing.
      - Paths with C(..), newlines or other control characters are refused.
    type: path
    required: true
  source:
    description:
      - Absolute path of a git repository (O(source_type=git)) or a tar file (O(source_type=tar)).
    type: path
    required: true
  source_type:
    description:
      - V(git) exports O(revision) of the repository with C(git archive); V(tar) unpacks the file.
    type: str
    choices: [git, tar]
    default: git
  revision:
    description:
      - The revision to export (a commit, tag or branch) with O(source_type=git); with O(source_type=tar) a name
        for the source used in messages and in the stamp.
    type: str
    required: true
  patches:
    description:
      - Absolute paths of patch files, applied in this order with C(patch -p1 --forward --batch).
    type: list
    elements: path
    default: []
  steps:
    description:
      - Commands run in order in the tree; each one's output is appended to C(build.log) in the tree.
    type: list
    elements: dict
    default: []
    suboptions:
      argv:
        description:
          - The command and its arguments, run as they are (no shell, no C(~) or C($VAR) expansion). Must not be
            empty.
        type: list
        elements: str
        required: true
      chdir:
        description:
          - Directory to run in, relative to the tree (no C(..), not absolute). C(PWD) is set to it.
        type: str
        default: .
      env:
        description:
          - Environment variables added for this step. Names must be identifiers.
        type: dict
        default: {}
      name:
        description:
          - What the step is called in a failure message (C(<name> failed)); the command line when not given.
        type: str
  creates:
    description:
      - Paths relative to the tree that the steps must have made; a missing one fails the build.
    type: list
    elements: str
    default: []
  log_lines:
    description:
      - How many of the build log's last lines a failure message shows.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Build an out-of-tree kernel module against the running kernel's headers
  labkit.cluster.build_tree:
    dest: /var/lib/labkit/mod/build/0123456789abcdef
    source: /var/lib/labkit/mod/git
    revision: 4f0c1a2
    patches:
      - /var/lib/labkit/mod/inputs/01-compat.patch
    steps:
      - name: make -C /lib/modules/6.1.0-18-amd64/build M=<tree> modules
        argv: [make, -C, /lib/modules/6.1.0-18-amd64/build, M=/var/lib/labkit/mod/build/0123456789abcdef.tmp, modules]
    creates: [mod.ko]

- name: Configure and build a tarball
  labkit.cluster.build_tree:
    dest: /var/lib/labkit/tool/build
    source: /var/lib/labkit/tool/tool-1.2.tar
    source_type: tar
    revision: "1.2"
    steps:
      - argv: [./configure, --prefix=/opt/tool]
      - argv: [make]
        env:
          CFLAGS: -O2
"""

RETURN = r"""
dest:
  description: The build directory.
  returned: always
  type: str
  sample: /var/lib/labkit/mod/build/0123456789abcdef
digest:
  description: sha256 of the inputs, as written to the stamp.
  returned: always
  type: str
log:
  description: Path of the build log (in the tree being built when a step failed).
  returned: always
  type: str
log_tail:
  description: The last O(log_lines) lines of the build log, when a step failed.
  returned: failure
  type: str
"""

import fcntl
import hashlib
import json
import os
import re
import shutil

from ansible.module_utils.basic import AnsibleModule

STAMP = ".labkit-built"
LOG = "build.log"
PATCHES = ".labkit-patches"
PATCH = ["patch", "-p1", "--forward", "--batch", "--no-backup-if-mismatch", "-r", "-"]
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def path_problem(what, value, absolute):
    if CONTROL.search(value):
        return f"{what} {value!r} has a newline or another control character"
    if ".." in value.split("/"):
        return f"{what} {value!r} contains '..'"
    if absolute and not value.startswith("/"):
        return f"{what} {value!r} is not an absolute path"
    if not absolute and value.startswith("/"):
        return f"{what} {value!r} must be relative to the tree, not absolute"
    return None


def input_problems(params):
    """Every problem with the inputs, before anything is touched."""
    problems = []
    for what in ("dest", "source"):
        problems.append(path_problem(what, params[what] or "", absolute=True))
    if params["dest"] in ("/", "") or (params["dest"] or "").rstrip("/") == "":
        problems.append("dest must not be /")
    if not params["revision"] or CONTROL.search(params["revision"]) or params["revision"].startswith("-"):
        problems.append(f"revision {params['revision']!r} is empty, starts with '-' or has a control character")
    for patch in params["patches"]:
        problems.append(path_problem("patch", patch, absolute=True))
    for relative in params["creates"]:
        problems.append(path_problem("creates", relative, absolute=False))
    for index, step in enumerate(params["steps"], 1):
        problems.append(path_problem(f"step {index} chdir", step["chdir"] or ".", absolute=False))
        if not step["argv"]:
            problems.append(f"step {index} has an empty argv")
        for arg in step["argv"] or []:
            if "\x00" in arg:
                problems.append(f"step {index} argument {arg!r} has a NUL character")
        for key, value in (step["env"] or {}).items():
            if not IDENTIFIER.fullmatch(str(key)):
                problems.append(f"step {index} env name {key!r} is not an identifier")
            elif "\x00" in str(value):
                problems.append(f"step {index} env {key} has a NUL character")
        if step.get("name") and CONTROL.search(step["name"]):
            problems.append(f"step {index} name {step['name']!r} has a control character")
    if params["log_lines"] < 1:
        problems.append("log_lines must be at least 1")
    return [p for p in problems if p]


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BuildTree:
    def __init__(self, module):
        self.module = module
        params = module.params
        self.dest = params["dest"].rstrip("/")
        self.tmp = f"{self.dest}.tmp"
        self.lock_path = f"{self.dest}.lock"
        self.source = params["source"]
        self.source_type = params["source_type"]
        self.revision = params["revision"]
        self.patches = params["patches"]
        self.steps = params["steps"]
        self.creates = params["creates"]
        self.log_lines = params["log_lines"]
        self.result = dict(changed=False, dest=self.dest, log=os.path.join(self.dest, LOG))

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **{**self.result, **extra})

    def run(self, argv, env=None, **kwargs):
        """run_command with LC_ALL=C (and env) and without its $VAR/~ expansion of the arguments."""
        environ = {"LC_ALL": "C", **(env or {})}
        return self.module.run_command(argv, environ_update=environ, expand_user_and_vars=False, **kwargs)

    def source_identity(self):
        if self.source_type == "tar":
            if not os.path.isfile(self.source):
                self.fail(f"source {self.source} is not a file")
            return {"tar": sha256_file(self.source)}
        rc, out, err = self.run(["git", "-C", self.source, "rev-parse", "--verify", f"{self.revision}^{{commit}}"])
        if rc != 0:
            self.fail(
                f"revision {self.revision} is not in the git repository {self.source}", rc=rc, stdout=out, stderr=err
            )
        return {"git": self.source, "commit": out.strip()}

    def digest(self):
        for patch in self.patches:
            if not os.path.isfile(patch):
                self.fail(f"patch {patch} is not a file")
        inputs = {
            "source": self.source_identity(),
            "revision": self.revision,
            "patches": [[os.path.basename(p), sha256_file(p)] for p in self.patches],
            "steps": [{k: s[k] for k in ("argv", "chdir", "env")} for s in self.steps],
            "creates": self.creates,
        }
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

    def built(self, digest):
        try:
            with open(os.path.join(self.dest, STAMP)) as handle:
                return json.load(handle).get("digest") == digest
        except (OSError, ValueError, AttributeError):
            return False

    def unpack(self):
        os.makedirs(self.tmp)
        if self.source_type == "tar":
            rc, out, err = self.run(["tar", "-x", "-f", self.source, "-C", self.tmp])
        else:
            # git archive | tar -x, without a shell: the archive goes through a file in the tree's parent
            archive = f"{self.tmp}.tar"
            rc, out, err = self.run(
                ["git", "-C", self.source, "archive", "--format=tar", f"--output={archive}", self.revision]
            )
            if rc == 0:
                rc, out, err = self.run(["tar", "-x", "-f", archive, "-C", self.tmp])
            if os.path.exists(archive):
                os.unlink(archive)
        if rc != 0:
            self.discard()
            self.fail(f"unpacking {self.revision} from {self.source} failed", rc=rc, stdout=out, stderr=err)

    def discard(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def apply_patches(self):
        for patch in self.patches:
            with open(patch, "rb") as handle:
                data = handle.read()
            rc, out, err = self.run(PATCH, cwd=self.tmp, data=data, binary_data=True)
            if rc != 0:
                self.discard()
                said = " ".join(f"{out}\n{err}".split())
                self.fail(
                    f"patch {os.path.basename(patch)} does not apply to {self.revision}: {said}",
                    rc=rc,
                    stdout=out,
                    stderr=err,
                )
            with open(os.path.join(self.tmp, PATCHES), "a") as handle:
                handle.write(f"{os.path.basename(patch)}\n")

    def log_tail(self, log):
        with open(log, errors="replace") as handle:
            return "".join(handle.readlines()[-self.log_lines :])

    def run_steps(self):
        log = os.path.join(self.tmp, LOG)
        with open(log, "a"):
            pass
        for step in self.steps:
            cwd = os.path.normpath(os.path.join(self.tmp, step["chdir"] or "."))
            name = step.get("name") or " ".join(step["argv"])
            if not os.path.isdir(cwd):
                self.discard()
                self.fail(f"{name}: the tree has no directory {step['chdir']} at {self.revision}")
            env = {"PWD": cwd, **{k: str(v) for k, v in (step["env"] or {}).items()}}
            with open(log, "a") as handle:
                handle.write(f"+ ({step['chdir']}) {' '.join(step['argv'])}\n")
            rc, out, err = self.run(step["argv"], env=env, cwd=cwd)
            with open(log, "a") as handle:
                handle.write(out)
                handle.write(err)
            if rc != 0:
                tail = self.log_tail(log)
                failed_log = os.path.join(self.dest + ".failed", LOG)
                self.keep_failed()
                self.result["log"] = failed_log
                self.fail(
                    f"{name} failed (rc {rc}) in {step['chdir']} (log: {failed_log}), last lines:\n{tail}",
                    rc=rc,
                    stdout=out,
                    stderr=err,
                    log_tail=tail,
                )
        for relative in self.creates:
            if not os.path.exists(os.path.join(self.tmp, relative)):
                self.discard()
                self.fail(f"the build of {self.revision} made no {relative}")

    def keep_failed(self):
        """The failed tree is kept at <dest>.failed for its log; the next run replaces it."""
        failed = f"{self.dest}.failed"
        shutil.rmtree(failed, ignore_errors=True)
        os.rename(self.tmp, failed)

    def finish(self, digest):
        with open(os.path.join(self.tmp, STAMP), "w") as handle:
            json.dump({"digest": digest, "revision": self.revision}, handle)
            handle.write("\n")
        if os.path.lexists(self.dest):
            shutil.rmtree(self.dest)
        os.rename(self.tmp, self.dest)
        shutil.rmtree(f"{self.dest}.failed", ignore_errors=True)

    def apply(self):
        problems = input_problems(self.module.params)
        if problems:
            self.module.fail_json(msg="; ".join(problems), **self.result)
        digest = self.digest()
        self.result["digest"] = digest
        if self.built(digest):
            self.module.exit_json(**self.result)
        if self.module.check_mode:
            self.module.exit_json(**{**self.result, "changed": True})
        os.makedirs(os.path.dirname(self.dest), exist_ok=True)
        with open(self.lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.built(digest):
                if os.path.lexists(self.tmp):
                    shutil.rmtree(self.tmp)
                self.unpack()
                self.apply_patches()
                self.run_steps()
                self.finish(digest)
                self.result["changed"] = True
        self.module.exit_json(**self.result)


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            source=dict(type="path", required=True),
            source_type=dict(type="str", default="git", choices=["git", "tar"]),
            revision=dict(type="str", required=True),
            patches=dict(type="list", elements="path", default=[]),
            steps=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    argv=dict(type="list", elements="str", required=True),
                    chdir=dict(type="str", default="."),
                    env=dict(type="dict", default={}),
                    name=dict(type="str"),
                ),
            ),
            creates=dict(type="list", elements="str", default=[]),
            log_lines=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )


def main():
    module = build_module()
    BuildTree(module).apply()


if __name__ == "__main__":
    main()
