"""dgm_jax/huge_pages.py: when an entry script re-executes itself with glibc's huge-page tunable, and
that the re-execution keeps the process, its arguments and the user's other tunables."""
import os
import subprocess
import sys
import textwrap

import pytest

from dgm_jax import huge_pages

LINUX, GLIBC, MODE = "linux", (2, 36), "madvise"


@pytest.mark.parametrize("environ, platform, glibc, mode, expected", [
    ({}, LINUX, GLIBC, MODE, True),
    ({}, LINUX, GLIBC, "always", True),
    ({}, LINUX, GLIBC, "never", False),                       # THP off: nothing to ask for
    ({}, LINUX, (2, 34), MODE, False),                        # glibc without the tunable
    ({}, "darwin", GLIBC, MODE, False),
    ({"DGM_JAX_HUGE_PAGES": "0"}, LINUX, GLIBC, MODE, False),  # the opt-out
    ({"DGM_JAX_HUGE_PAGES": "1"}, LINUX, GLIBC, MODE, True),
    ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, LINUX, GLIBC, MODE, False),   # the user's own choice
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, LINUX, GLIBC, MODE, True),
])
def test_needed(environ, platform, glibc, mode, expected):
    assert huge_pages.needed(environ, platform, glibc, mode) is expected


def test_thp_mode_reads_the_bracketed_choice(tmp_path):
    f = tmp_path / "enabled"
    f.write_text("always [madvise] never\n")
    assert huge_pages.thp_mode(str(f)) == "madvise"
    f.write_text("[always] madvise never\n")
    assert huge_pages.thp_mode(str(f)) == "always"
    assert huge_pages.thp_mode(str(tmp_path / "absent")) is None


def test_tunables_keep_the_users_others():
    assert huge_pages.tunables_with_setting("") == "glibc.malloc.hugetlb=1"
    assert huge_pages.tunables_with_setting("glibc.malloc.arena_max=2") == \
        "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"


def test_reexec_keeps_pid_arguments_and_other_tunables(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "DGM_JAX_HUGE_PAGES")}
    if not huge_pages.needed(env):
        pytest.skip("this machine has no glibc >= 2.35 with transparent huge pages: reexec() does nothing")
    script = tmp_path / "entry.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(huge_pages.__file__.rsplit("/dgm_jax/", 1)[0])!r})
        if __name__ == "__main__":
            print("start", os.getpid(), flush=True)
            from dgm_jax.huge_pages import reexec
            reexec()
            print("run", os.getpid(), os.environ["GLIBC_TUNABLES"], sys.argv[1:], flush=True)
    """))
    env["GLIBC_TUNABLES"] = "glibc.malloc.arena_max=4"
    out = subprocess.run([sys.executable, "-u", str(script), "--a=1", "b c"], env=env, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    start_pids = [line.split()[1] for line in out if line.startswith("start")]
    runs = [line for line in out if line.startswith("run")]
    assert len(start_pids) == 2 and start_pids[0] == start_pids[1]        # executed twice, one process
    assert runs == [f"run {start_pids[0]} glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1 ['--a=1', 'b c']"]
