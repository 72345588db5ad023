"""The bad-input corpus: each case's arguments, files it needs, and what its one line says.

Placeholders in arguments and files: ``{label}`` the lab's partition label,
``{image}`` the bootable image, ``{tiny}`` an image without a kernel,
``{esp}`` the lab's ESP, ``{scratch}`` a directory for the case's own files,
``{top}`` the partition's mounted top level.  Every case also gets
``--label {label} --image {image} --esp {esp} --yes`` unless it sets that
flag itself (``no_defaults`` drops them all).
"""

from __future__ import annotations

from dataclasses import dataclass, field

BEGIN = "# >>> dockerboot-wizard: managed entry, replaced on every apply >>>\n"
END = "# <<< dockerboot-wizard <<<\n"


@dataclass(frozen=True)
class Case:
    """One bad input."""

    id: str
    args: tuple[str, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    """Files made before the run: ``{scratch}/x`` or ``{top}/…`` -> content (None: a dir)."""
    stdin: bytes = b""
    docker_host: str | None = None
    special: str = ""
    """``ro-esp``, ``full-esp``, ``locked``: set up by the test itself."""
    no_defaults: bool = False


PW = {"{scratch}/pw": b"s3cret\n"}


def _user(name: str) -> tuple[str, ...]:
    return ("--user", name, "--password-file", "{scratch}/pw")


def _pw(data: bytes) -> Case:
    return Case("", _user("alice"), {"{scratch}/pw": data})


def _ko(text: str) -> tuple[str, ...]:
    return ("--kernel-options", text)


CASES: list[Case] = [
    # --- labels ---
    Case("label with a blank", ("--label", "my disk")),
    Case("label with a double quote", ("--label", 'a"b')),
    Case("label with a comma", ("--label", "a,b")),
    Case("label with a slash", ("--label", "a/b")),
    Case("label with a line break", ("--label", "a\nb")),
    Case("empty label", ("--label", "")),
    Case("label of 256 characters", ("--label", "x" * 256)),
    Case("no partition with that label", ("--label", "no-such-label-xyz")),
    # --- image references ---
    Case("image with upper case", ("--image", "Debian:12")),
    Case("image with an empty tag", ("--image", "debian:")),
    Case("image with an empty digest", ("--image", "debian@")),
    Case("image with a malformed digest", ("--image", "debian@sha256:xyz")),
    Case("image with a blank", ("--image", "debian 12")),
    Case("image with two colons", ("--image", "a::b")),
    Case("image ending in a slash", ("--image", "ns/")),
    Case("image tag of 129 characters", ("--image", "a:" + "x" * 129)),
    Case("image with a double quote", ("--image", 'a"b:1')),
    Case("image that does not exist", ("--image", "nope/missing:9")),
    Case("image without a shell or kernel", ("--image", "{tiny}")),
    # --- hostnames ---
    Case("hostname with an underscore", ("--hostname", "bad_host")),
    Case("hostname with a bang", ("--hostname", "bad!")),
    Case("hostname starting with a dash", ("--hostname=-x",)),
    Case("hostname ending with a dash", ("--hostname", "x-")),
    Case("hostname label of 64 characters", ("--hostname", "a" * 64)),
    Case("hostname of 255 characters", ("--hostname", "a." * 127 + "a")),
    Case("hostname with an empty label", ("--hostname", "a..b")),
    Case("hostname with a blank", ("--hostname", "a b")),
    Case("empty hostname", ("--hostname", "")),
    # --- users and administrators ---
    Case("user name with upper case", _user("Alice"), PW),
    Case("user name starting with a digit", _user("1alice"), PW),
    Case("user name with a blank", _user("al ice"), PW),
    Case("user name of 33 characters", _user("a" * 33), PW),
    Case("user without a password file", ("--user", "alice")),
    Case("the same user twice", (*_user("alice"), *_user("alice")), PW),
    Case("two passwords from stdin", ("--user", "a", "--password-file", "-",
                                      "--user", "b", "--password-file", "-")),
    Case("administrator name with upper case", ("--admin", "Bob")),
    Case("administrator who is no user", ("--admin", "bob")),
    # --- passwords and password files ---
    *[Case(name, c.args, c.files) for name, c in (
        ("empty password file", _pw(b"")),
        ("password file with only a newline", _pw(b"\n")),
        ("password file with only CR LF", _pw(b"\r\n")),
        ("password file that is not UTF-8", _pw(b"caf\xe9\n")),
        ("password with a CR inside", _pw(b"ab\r\r\n")),
        ("password with a NUL", _pw(b"a\x00b\n")),
    )],
    Case("password file that is a directory", ("--user", "alice", "--password-file",
                                               "{scratch}")),
    Case("password file that does not exist", ("--user", "alice", "--password-file",
                                               "{scratch}/nope")),
    Case("empty password on stdin", ("--user", "alice", "--password-file", "-"), stdin=b""),
    Case("password on stdin not UTF-8", ("--user", "alice", "--password-file", "-"),
         stdin=b"\xff\xfe\n"),
    # --- kernel options: every reserved parameter, and what rEFInd cannot carry ---
    Case("kernel option root=", _ko("root=/dev/sda1")),
    Case("kernel option rootflags=subvol=", _ko("rootflags=subvol=docker")),
    Case("kernel option rootflags with subvol= after others",
         _ko("rootflags=compress=zstd,subvol=boot_docker")),
    Case("kernel option rootflags=subvolid=", _ko("rootflags=subvolid=5")),
    Case("kernel option docker_path=", _ko("docker_path=elsewhere")),
    Case("kernel option docker_image=", _ko("quiet docker_image=evil:1")),
    Case("kernel option toplayer=", _ko("toplayer=LABEL=other")),
    Case("kernel option toplayerflags=", _ko("toplayerflags=subvol=x")),
    Case("kernel option toplayerfstype=", _ko("toplayerfstype=ext4")),
    Case("kernel option toplayer_path=", _ko("toplayer_path=etc")),
    Case("kernel option dockerboot.*", _ko("dockerboot.debug=1")),
    Case("kernel option with a double quote", _ko('quiet "x')),
    Case("kernel option with a line break", _ko("quiet\nsplash")),
    Case("kernel option rootflags= empty", _ko("rootflags=")),
    # --- ESP and refind.conf ---
    Case("ESP that does not exist", ("--esp", "{scratch}/no-esp")),
    Case("ESP that is a file", ("--esp", "{scratch}/file"), {"{scratch}/file": b"x"}),
    Case("ESP without refind.conf", ("--esp", "{scratch}/empty-esp"),
         {"{scratch}/empty-esp": None}),
    Case("GRUB asked for an image without its signed shim + GRUB",
         ("--esp", "{scratch}/empty-esp", "--bootloader", "grub"),
         {"{scratch}/empty-esp": None}),
    Case("a distribution's GRUB whose config is not mounted here",
         ("--esp", "{scratch}/distro-esp", "--bootloader", "grub"),
         {"{scratch}/distro-esp/EFI/debian/grub.cfg":
          b"search.fs_uuid 00000000-0000-4000-8000-00000000dead root hd0,gpt2\n"
          b"set prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"}),
    Case("a distribution's GRUB that did not sign the image's kernel",
         ("--esp", "{scratch}/ubuntu-esp", "--bootloader", "grub"),
         {"{scratch}/ubuntu-esp/EFI/ubuntu/grub.cfg":
          b"search.fs_uuid 00000000-0000-4000-8000-00000000dead root hd0,gpt2\n"
          b"set prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"}),
    Case("a GRUB that keeps its whole config on the ESP",
         ("--esp", "{scratch}/whole-esp", "--bootloader", "grub"),
         {"{scratch}/whole-esp/EFI/arch/grub.cfg": b"set default=0\nmenuentry x { true }\n"}),
    Case("refind.conf that does not exist", ("--refind-conf", "{scratch}/nope.conf")),
    Case("refind.conf that is a directory", ("--refind-conf", "{scratch}")),
    Case("refind.conf with a begin marker and no end",
         ("--refind-conf", "{scratch}/r.conf"),
         {"{scratch}/r.conf": b"timeout 5\n" + BEGIN.encode()}),
    Case("refind.conf with two begin markers", ("--refind-conf", "{scratch}/r.conf"),
         {"{scratch}/r.conf": (BEGIN + BEGIN + END).encode()}),
    Case("refind.conf with the end marker first", ("--refind-conf", "{scratch}/r.conf"),
         {"{scratch}/r.conf": (END + BEGIN).encode()}),
    Case("refind.conf in UTF-16", ("--refind-conf", "{scratch}/r.conf"),
         {"{scratch}/r.conf": "timeout 5\n".encode("utf-16")}),
    Case("read-only ESP", special="ro-esp"),
    Case("full ESP", special="full-esp"),
    # --- saved config and top layer on the partition ---
    Case("saved config that is not TOML", (),
         {"{top}/boot_docker/dockerboot-wizard.toml": b"label = [\n"}),
    Case("saved config with a reserved kernel option", (),
         {"{top}/boot_docker/dockerboot-wizard.toml":
          b'label = "{label}"\nimage = "{image}"\nkernel_options = "rootflags=subvol=docker"\n'}),
    Case("saved config with an absolute top-layer path", (),
         {"{top}/boot_docker/dockerboot-wizard.toml":
          b'label = "{label}"\nimage = "{image}"\ntoplayer_path = "/etc"\n'}),
    Case("top-layer daemon.json that is not JSON", (),
         {"{top}/boot_docker/toplayer/etc/docker/daemon.json": b"{not json\n"}),
    Case("top-layer daemon.json that is not an object", (),
         {"{top}/boot_docker/toplayer/etc/docker/daemon.json": b"[1, 2]\n"}),
    Case("a home directory that is no subvolume", (), {"{top}/home": None}),
    Case("--toplayer-only without a saved config", ("--label", "{label}", "--toplayer-only",
                                                    "--yes"), no_defaults=True),
    Case("--toplayer-only with --image", ("--toplayer-only",)),
    # --- daemon and lock ---
    Case("daemon unreachable", docker_host="unix:///nonexistent/docker.sock"),
    Case("daemon unreachable and a bad hostname", ("--hostname", "bad_host"),
         docker_host="unix:///nonexistent/docker.sock"),
    Case("another run holds the lock", special="locked"),
]
