"""diffs: unified diffs with password hashes redacted, binary files and headers."""

from __future__ import annotations

from wizard.common.diffs import redact_shadow, unified_diff


def test_diff_only_redacted_change_still_reported() -> None:
    old = b"alice:$6$a$b:1::::::\n"
    diff = unified_diff(old, b"alice:$6$a$c:1::::::\n", "etc/shadow", secret=True)
    assert "$6$" not in diff and "alice:<new hash redacted>" in diff
    assert unified_diff(old, old, "etc/shadow", secret=True) == ""


def test_redact_gshadow_and_hash_as_last_field() -> None:
    text = "sudo:*::alice\nadm:$6$x$y::\nweird:$6$x$z\n"
    assert redact_shadow(text) == ("sudo:*::alice\nadm:<hash redacted>::\n"
                                   "weird:<hash redacted>\n")


def test_diff_binary_and_missing_newline() -> None:
    assert unified_diff(b"a\0b", b"c", "bin/x") == "Binary file bin/x differs (3 -> 1 bytes)\n"
    assert "\\ No newline at end of file" in unified_diff(b"a\n", b"a\nb", "f")


def test_diff_of_an_absolute_path_has_git_style_headers():
    diff = unified_diff(b"a\n", b"b\n", "/boot/efi/EFI/refind/refind.conf")
    assert diff.splitlines()[:2] == ["--- a/boot/efi/EFI/refind/refind.conf",
                                     "+++ b/boot/efi/EFI/refind/refind.conf"]
